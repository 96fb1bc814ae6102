"""RNNClassifier: every flag combination trains; padding never changes a sequence's score."""

from __future__ import annotations

import itertools

import pytest
import torch

from logsieve.config import ModelConfig
from logsieve.features.counts import COUNT_CAP, count_features, count_width
from logsieve.models.rnn import RNNClassifier

COMBOS = list(
    itertools.product(("rnn", "gru", "lstm"), (1, 2), (False, True), ("last", "mean", "max", "sum"), (False, True))
)


@pytest.mark.parametrize(("cell", "layers", "bidir", "pooling", "bn"), COMBOS)
def test_every_flag_combination_runs_forward_and_backward(cell, layers, bidir, pooling, bn):
    torch.manual_seed(0)
    cfg = ModelConfig(cell=cell, num_layers=layers, bidirectional=bidir, pooling=pooling, batch_norm=bn,
                      dropout=0.1, embed_dim=6, hidden_size=5)  # fmt: skip
    model = RNNClassifier(12, cfg).train()
    tokens = torch.tensor([[2, 3, 4, 5], [6, 7, 0, 0], [8, 0, 0, 0]])
    lengths = torch.tensor([4, 2, 1])
    logits = model(tokens, lengths)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith("norm"))
    assert model.embedding.weight.grad[0].abs().sum() == 0  # padding row gets no gradient


@pytest.mark.parametrize(("bidir", "pooling"), list(itertools.product((False, True), ("last", "mean", "max", "sum"))))
def test_padding_is_masked(bidir, pooling):
    torch.manual_seed(1)
    model = RNNClassifier(
        10, ModelConfig(cell="lstm", bidirectional=bidir, pooling=pooling, embed_dim=4, hidden_size=6)
    ).eval()
    short = model(torch.tensor([[2, 3, 4]]), torch.tensor([3]))
    padded = model(torch.tensor([[2, 3, 4, 0, 0, 0, 0]]), torch.tensor([3]))
    assert torch.allclose(short, padded, atol=1e-6)


def test_parameter_count_grows_with_capacity():
    small = RNNClassifier(10, ModelConfig(hidden_size=8)).n_parameters()
    big = RNNClassifier(10, ModelConfig(hidden_size=8, num_layers=2, bidirectional=True)).n_parameters()
    assert big > small > 0


def test_event_counts_feature_counts_tokens_and_ignores_padding():
    tokens = torch.tensor([[2, 3, 2, 2], [5, 1, 0, 0]])
    expected = torch.tensor([[0, 0, 3, 1, 0, 0], [0, 1, 0, 0, 0, 1]], dtype=torch.float32)
    model = RNNClassifier(6, ModelConfig(counts="log", head_hidden=4, embed_dim=3, hidden_size=4))
    assert torch.equal(model.event_counts(tokens), torch.log1p(expected))
    exact = RNNClassifier(6, ModelConfig(counts="exact", embed_dim=3, hidden_size=4)).event_counts(tokens)
    one_hot, log = exact[:, : 6 * (COUNT_CAP + 1)].reshape(2, 6, COUNT_CAP + 1), exact[:, 6 * (COUNT_CAP + 1) :]
    assert torch.equal(one_hot.argmax(-1), expected.long()) and torch.equal(one_hot.sum(-1), torch.ones(2, 6))
    assert torch.equal(log, torch.log1p(expected))
    many = count_features(torch.tensor([[40.0]]), "exact")
    assert many[0, COUNT_CAP] == 1 and many[0, -1] == pytest.approx(float(torch.log1p(torch.tensor(40.0))))


def test_old_boolean_counts_setting_still_loads():
    assert ModelConfig(counts=True).counts == "log" and ModelConfig(counts=False).counts == "none"


@pytest.mark.parametrize(
    ("pooling", "head_hidden", "counts"), [("max", 0, "log"), ("last", 8, "log"), ("mean", 8, "exact")]
)
def test_count_branch_trains_and_is_masked(pooling, head_hidden, counts):
    torch.manual_seed(2)
    cfg = ModelConfig(
        counts=counts, head_hidden=head_hidden, pooling=pooling, bidirectional=True, embed_dim=4, hidden_size=5
    )
    model = RNNClassifier(10, cfg)
    short = model(torch.tensor([[2, 3, 4]]), torch.tensor([3]))
    padded = model(torch.tensor([[2, 3, 4, 0, 0]]), torch.tensor([3]))
    assert torch.allclose(short, padded, atol=1e-6)
    model(torch.tensor([[2, 3, 4], [5, 0, 0]]), torch.tensor([3, 1])).sum().backward()
    first = model.head[0] if head_hidden else model.head
    assert first.in_features == 10 + count_width(10, counts) and first.weight.grad[:, 10:].abs().sum() > 0
