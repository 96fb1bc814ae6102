"""Count-vector baselines: fit on train only, tuned on validation, comparable with the RNNs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from logsieve.data.splits import split_sessions
from logsieve.evaluation.metrics import f1_at
from logsieve.features.counts import COUNT_CAP, count_vectors
from logsieve.features.vocabulary import Vocabulary
from logsieve.models.baselines import BASELINES, CountBaseline


@pytest.mark.parametrize("kind", BASELINES)
def test_every_baseline_learns_the_simulated_anomalies(kind, simulated):
    train, val, test = split_sessions(simulated, seed=0)
    model = CountBaseline(kind, seed=0).fit(train, val)
    scores = model.score(test)
    assert scores.shape == (test.height,) and ((scores >= 0) & (scores <= 1)).all()
    assert f1_at(test["label"].to_numpy(), scores, model.threshold_) > 0.8
    assert model.n_parameters() > 0
    assert np.array_equal(model.predict(test), (scores >= model.threshold_).astype(np.int8))


def test_count_vectors_count_events_and_map_unseen_ones_to_the_unknown_column():
    train = pl.DataFrame({"events": [["E1", "E2", "E1"], ["E2"]]})
    model = CountBaseline("count-mlp")
    vocab = Vocabulary().fit(train["events"])
    counts = count_vectors(vocab, pl.Series([["E1", "E1", "E9"], []]))
    assert counts.tolist() == [[0, 1, 2, 0], [0, 0, 0, 0]]  # PAD, UNK, E1, E2
    model.vocab_ = vocab
    features = model._features(pl.Series([["E1", "E1"]]))  # one-hot of each event's count, then log(1 + count)
    assert features.shape == (1, 4 * (COUNT_CAP + 2))
    assert features[0, 2 * (COUNT_CAP + 1) + 2] == 1 and np.allclose(features[0, -4:], np.log1p([0, 0, 2, 0]))
