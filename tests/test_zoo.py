"""The wider zoo of count-vector detectors: 1-NN, linear SVM, gradient boosting, isolation forest, PCA (SPE)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import skops.io as sio
from conftest import session_table as table

from logsieve.data.splits import split_sessions
from logsieve.evaluation.metrics import f1_at
from logsieve.features.counts import count_vectors
from logsieve.models.baselines import BASELINES, ESTIMATOR, TRUSTED, CountBaseline
from logsieve.models.unsupervised import UNSUPERVISED

# normal sessions hold E5 twice, anomalous ones three times: only exact counts tell them apart
TRAIN = table([("E5 E5 E2", 0)] * 12 + [("E2 E5 E5", 0)] * 6 + [("E5 E5 E5 E2", 1)] * 6 + [("E5 E2 E5 E5", 1)] * 3)
VAL = table([("E5 E5 E2", 0)] * 5 + [("E5 E5 E5 E2", 1)] * 2)


@pytest.fixture(scope="module")
def split(simulated):
    return split_sessions(simulated, seed=0)


@pytest.mark.parametrize("kind", BASELINES)
def test_skops_trust_lists_are_exactly_what_a_fitted_model_needs(kind, split, tmp_path):
    """Minimal, not merely sufficient: every trusted type is one skops reports for a fitted model."""
    train, val, _ = split
    CountBaseline(kind, seed=0).fit(train, val).save(tmp_path)
    assert sorted(sio.get_untrusted_types(file=tmp_path / ESTIMATOR)) == sorted(TRUSTED[kind])


def test_one_nn_fits_each_distinct_count_vector_once_scored_by_its_anomalous_share():
    train = table([("E5 E5 E2", 0)] * 9 + [("E2 E5 E5", 1)] + [("E5 E5 E5 E2", 1)] * 4 + [("E7 E7 E7 E7", 0)] * 3)
    model = CountBaseline("1-nn").fit(train, VAL)
    # "E5 E5 E2" and "E2 E5 E5" have the same counts: one stored vector, 1 of its 10 sessions anomalous
    assert model.estimator_._fit_X.shape[0] == 3 and model.n_parameters() == 3 * len(model.vocab_)
    test = table([("E2 E5 E5", 1), ("E5 E5 E5 E2", 1), ("E5 E5 E5 E5 E2", 0), ("E7 E7 E7", 0)])
    assert model.score(test).tolist() == pytest.approx([0.1, 1.0, 1.0, 0.0])  # nearest vector's share
    assert model.predict(test).tolist() == [0, 1, 1, 0]  # the cut, from validation, sits between 0.1 and 1


def test_gradient_boosting_splits_on_a_vector_that_is_one_distinct_row():
    """min_samples_leaf counts distinct rows: with sklearn's default (20) these 4 rows give no split at all."""
    model = CountBaseline("hist-gradient-boosting", threshold="fixed").fit(TRAIN, VAL)
    assert model.predict(table([("E5 E5 E2", 0), ("E5 E5 E5 E2", 1)])).tolist() == [0, 1]


def test_linear_svm_scores_are_the_sigmoid_of_its_margin(split):
    train, val, test = split
    model = CountBaseline("linear-svm").fit(train, val)
    scores = model.score(test)
    margin = model.estimator_.decision_function(np.log1p(count_vectors(model.vocab_, test["events"])))
    assert np.allclose(scores, 1 / (1 + np.exp(-margin))) and 0 < model.threshold_ < 1
    assert f1_at(test["label"].to_numpy(), scores, model.threshold_) > 0.8


def test_pca_learns_from_normal_sessions_only_and_flags_an_event_never_seen_among_them(split):
    train, val, test = split
    model = CountBaseline("pca").fit(train, val)
    # more (or other) anomalous training sessions change nothing: PCA never sees them
    more = pl.concat([train, train.filter(pl.col("label") == 1).with_columns(events=pl.lit(["E9"] * 40))])
    other = CountBaseline("pca").fit(more, val)
    assert np.array_equal(other.score(test), model.score(test))
    # an event seen in training, but only in anomalous sessions, lies outside the normal subspace
    rare = train.filter(pl.col("label") == 1)["events"].explode().unique()
    only_anomalous = set(rare) - set(train.filter(pl.col("label") == 0)["events"].explode())
    normals = test.filter(pl.col("label") == 0)
    assert only_anomalous, "the simulator should give anomalous sessions some events of their own"
    event = sorted(only_anomalous)[0]
    odd = normals.head(50).with_columns(pl.col("events").list.concat(pl.lit([event])))
    assert model.score(odd).min() > model.score(normals).max()
    assert (model.predict(odd) == 1).all()
    assert f1_at(test["label"].to_numpy(), model.score(test), model.threshold_) > 0.8


def test_isolation_forest_reads_no_label_when_fitting(split):
    train, val, test = split
    model = CountBaseline("isolation-forest").fit(train, val)
    flipped = CountBaseline("isolation-forest").fit(train.with_columns(label=1 - pl.col("label")), val)
    assert np.array_equal(flipped.score(test), model.score(test))  # labels only set the threshold
    normals = test.filter(pl.col("label") == 0)
    # a session far outside every training range is isolated sooner than the typical normal session
    flood = normals.head(1).with_columns(pl.col("events").list.concat(pl.lit(["E5"] * 200)))
    assert model.score(flood)[0] > np.median(model.score(normals))
    assert ((model.score(test) > 0) & (model.score(test) < 1)).all()


@pytest.mark.parametrize("kind", UNSUPERVISED)
def test_unsupervised_thresholds_come_from_validation_labels(kind, split):
    train, val, _ = split
    model = CountBaseline(kind).fit(train, val)
    fixed = CountBaseline(kind, threshold="fixed").fit(train, val)
    assert np.array_equal(model.score(val), fixed.score(val)) and fixed.threshold_ == 0.5
    assert model.threshold_ != 0.5
