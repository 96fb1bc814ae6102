"""Vocabulary on train only, truncation, and the de-duplication equivalence."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from logsieve.config import ModelConfig
from logsieve.data.splits import split_sessions
from logsieve.features.encoding import collapse, encode_rows, encode_splits, truncate
from logsieve.features.vocabulary import PAD, UNK, Vocabulary
from logsieve.models.rnn import RNNClassifier
from logsieve.training.trainer import weighted_bce


def sessions(rows: list[tuple[str, int, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"session_id": [r[0] for r in rows], "label": [r[1] for r in rows], "events": [r[2].split() for r in rows]},
        schema={"session_id": pl.String, "label": pl.Int8, "events": pl.List(pl.String)},
    )


def test_vocabulary_fit_on_train_only_unknowns_map_to_unk():
    train = sessions([("a", 0, "E5 E22 E5"), ("b", 1, "E5 E7")])
    test = sessions([("c", 1, "E5 E99 E7")])
    vocab = Vocabulary().fit(train["events"])
    assert vocab.events_ == ["E22", "E5", "E7"]
    assert "E99" not in vocab.index_
    encoded = vocab.encode(test["events"]).to_list()[0]
    assert encoded[1] == UNK and PAD not in encoded and UNK not in vocab.encode(train["events"]).explode().to_list()


def test_events_only_in_validation_and_test_rows_map_to_unk_through_split_and_encode(simulated):
    """Put E999 into the data before splitting, only in rows the (deterministic) split sends to validation
    or test; the real path (split_sessions -> encode_splits, as Detector.fit runs it) must not learn it."""
    _, val_ids, test_ids = (part["session_id"] for part in split_sessions(simulated, seed=3))
    marked = pl.concat([val_ids.head(20), test_ids.head(20)])
    data = simulated.with_columns(
        events=pl.when(pl.col("session_id").is_in(marked.implode()))
        .then(pl.col("events").list.concat(pl.lit(["E999"])))
        .otherwise(pl.col("events"))
    )
    train, val, test = split_sessions(data, seed=3)
    assert val["events"].list.contains("E999").sum() == 20 and test["events"].list.contains("E999").sum() == 20
    assert not train["events"].list.contains("E999").any()

    sets = encode_splits(train, val, max_len=512, keep="head", dedup=True)
    seen = set(train["events"].explode().to_list())
    assert "E999" not in sets.vocab.index_ and set(sets.vocab.events_) == seen
    assert not (sets.train.tokens == UNK).any()  # training rows never hold UNK ...
    test_set = encode_rows(sets.vocab, test.with_columns(count=pl.lit(1)))
    for part, encoded in ((val, sets.val), (test, test_set)):
        unseen = part["events"].explode().is_in(list(seen)).not_().sum()  # E999 and any event rare enough
        assert int(((encoded.tokens == UNK).sum(dim=1) * encoded.counts).sum()) == unseen >= 20  # ... others do
    rows = test["session_id"].is_in(marked.implode()).to_numpy()
    tokens, lengths = test_set.tokens[rows], test_set.lengths[rows]
    assert (tokens[torch.arange(len(tokens)), lengths - 1] == UNK).all()  # E999, appended last, is UNK


def test_truncation_reports_and_keeps_head_or_tail():
    ev = sessions([("a", 0, "E1 E2 E3 E4"), ("b", 0, "E1")])["events"]
    head, n = truncate(ev, 2, "head")
    tail, _ = truncate(ev, 2, "tail")
    assert n == 1 and head.to_list() == [["E1", "E2"], ["E1"]] and tail.to_list()[0] == ["E3", "E4"]


def test_collapse_counts_identical_sequence_label_pairs():
    df = sessions([("a", 0, "E5 E22"), ("b", 0, "E5 E22"), ("c", 1, "E5 E22"), ("d", 0, "E7")])
    rows = collapse(df)
    assert rows.select("events", "label", "count").rows() == [
        (["E5", "E22"], 0, 2),
        (["E5", "E22"], 1, 1),
        (["E7"], 0, 1),
    ]
    assert collapse(df, dedup=False)["count"].to_list() == [1, 1, 1, 1]


def test_weighted_loss_on_dedup_rows_equals_mean_loss_on_duplicated_rows(simulated):
    """The claim that lets an epoch cost per distinct sequence: identical objective."""
    torch.manual_seed(0)
    vocab = Vocabulary().fit(simulated["events"])
    model = RNNClassifier(len(vocab), ModelConfig(cell="gru", hidden_size=8, embed_dim=4, pooling="mean")).eval()
    full, dedup = encode_rows(vocab, collapse(simulated, dedup=False)), encode_rows(vocab, collapse(simulated))
    assert len(dedup) < len(full) / 2  # the simulator repeats sequences like HDFS does
    with torch.no_grad():
        plain = torch.nn.functional.binary_cross_entropy_with_logits(model(full.tokens, full.lengths), full.labels)
        weighted = weighted_bce(model(dedup.tokens, dedup.lengths), dedup.labels, dedup.counts)
    assert weighted.item() == pytest.approx(plain.item(), rel=1e-5)
    # and the gradients agree too
    grads = []
    for data, fn in ((full, None), (dedup, weighted_bce)):
        model.zero_grad()
        logits = model(data.tokens, data.lengths)
        loss = (
            weighted_bce(logits, data.labels, data.counts)
            if fn
            else torch.nn.functional.binary_cross_entropy_with_logits(logits, data.labels)
        )
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_bucketed_batches_cover_every_row_once(simulated):
    vocab = Vocabulary().fit(simulated["events"])
    data = encode_rows(vocab, collapse(simulated))
    gen = torch.Generator().manual_seed(0)
    idx = torch.cat(list(data.batches(16, shuffle=True, bucket=True, generator=gen)))
    assert sorted(idx.tolist()) == list(range(len(data)))
    tokens, lengths, _, _ = data.batch(idx[:16])
    assert tokens.shape[1] == int(lengths.max())
