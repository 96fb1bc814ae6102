"""Count-vector baselines: fit on train only, tuned on validation, comparable with the RNNs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import session_table as table

from logsieve.data.splits import split_sessions
from logsieve.evaluation.metrics import f1_at
from logsieve.features.counts import COUNT_CAP, count_vectors
from logsieve.models.baselines import SUPERVISED, CountBaseline


@pytest.mark.parametrize("kind", SUPERVISED)  # the unsupervised kinds: tests/test_zoo.py
def test_every_baseline_learns_the_simulated_anomalies(kind, simulated):
    train, val, test = split_sessions(simulated, seed=0)
    model = CountBaseline(kind, seed=0).fit(train, val)
    scores = model.score(test)
    assert scores.shape == (test.height,) and ((scores >= 0) & (scores <= 1)).all()
    assert f1_at(test["label"].to_numpy(), scores, model.threshold_) > 0.8
    assert model.n_parameters() > 0
    assert np.array_equal(model.predict(test), (scores >= model.threshold_).astype(np.int8))


# normal sessions hold E5 twice, anomalous ones three times: only exact counts tell them apart
TRAIN = table([("E5 E5 E2", 0)] * 12 + [("E2 E5 E5", 0)] * 6 + [("E5 E5 E5 E2", 1)] * 6 + [("E5 E2 E5 E5", 1)] * 3)
VAL = table([("E5 E5 E2", 0)] * 5 + [("E5 E5 E5 E2 E8", 1)] * 2 + [("E8 E5 E5 E2", 0)])  # E8: seen in validation only


def test_fit_learns_the_vocabulary_from_train_only_and_counts_unseen_events_in_the_unknown_column():
    model = CountBaseline("decision-tree").fit(TRAIN, VAL)
    assert model.vocab_.events_ == ["E2", "E5"]  # E8 appears in validation only
    assert model.estimator_.n_features_in_ == len(model.vocab_) == 4  # PAD, UNK, E2, E5
    counts = count_vectors(model.vocab_, pl.Series([["E5", "E5", "E9", "E8", "E2"], []]))
    assert counts.tolist() == [[0, 2, 1, 2], [0, 0, 0, 0]]  # two unseen events, both in the UNK column


def test_scores_follow_exact_counts_and_an_unseen_event_is_not_taken_for_a_known_one():
    model = CountBaseline("decision-tree", threshold="fixed").fit(TRAIN, VAL)
    test = table([("E5 E5 E2", 0), ("E5 E5 E5 E2", 1), ("E5 E2 E5 E5", 1), ("E5 E5 E2 E9", 0), ("E9 E5 E5 E5 E2", 1)])
    assert model.predict(test).tolist() == [0, 1, 1, 0, 1]
    # E9 lands in the UNK column, which training never used: it changes nothing
    assert model.score(test)[3] == model.score(test)[0] and model.score(test)[4] == model.score(test)[1]


def test_count_mlp_sees_one_hot_counts_plus_log_per_vocabulary_entry():
    model = CountBaseline("count-mlp").fit(TRAIN, VAL)
    assert model.estimator_.n_features_in_ == len(model.vocab_) * (COUNT_CAP + 2)
    test = table([("E5 E5 E2", 0), ("E5 E5 E5 E2", 1)])
    assert model.predict(test).tolist() == [0, 1]


def test_fixed_threshold_is_one_half_and_tuned_one_separates_validation():
    fixed = CountBaseline("logistic-regression", threshold="fixed").fit(TRAIN, VAL)
    assert fixed.threshold_ == 0.5
    tuned = CountBaseline("logistic-regression").fit(TRAIN, VAL)
    assert np.array_equal(tuned.score(VAL), fixed.score(VAL))  # same estimator; only the cut differs
    scores, y = tuned.score(VAL), VAL["label"].to_numpy()
    assert scores[y == 0].max() < tuned.threshold_ <= scores[y == 1].min()
    assert np.array_equal(tuned.predict(VAL), y)
    assert np.array_equal(tuned.predict(TRAIN), (tuned.score(TRAIN) >= tuned.threshold_).astype(np.int8))
