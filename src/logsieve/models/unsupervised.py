"""Unsupervised (novelty) detectors on event-count vectors: isolation forest and PCA with squared prediction error.

Neither sees a label when fitting; labels only tune the alarm threshold on validation. PCA learns the
normal subspace from the NORMAL training sessions only (loglizer's and DeepLog's setting). The isolation
forest is fit on ALL training sessions without labels (loglizer's setting): fit on normals only it
scored validation F1 0.11 on the public HDFS sample (split seed 0) against 0.70 this way — being
axis-parallel it isolates rare clusters it has seen, not combinations it has not. Both fit on every
session, duplicates included, since how common a pattern is matters to them. Scores are mapped
monotonically into [0, 1) so they share the threshold rule and the bundle's checks with the supervised kinds.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.pipeline import Pipeline

UnsupervisedKind = Literal["isolation-forest", "pca"]
UNSUPERVISED: tuple[UnsupervisedKind, ...] = ("isolation-forest", "pca")
# Validation F1 of PCA on the public sample (split seed 0), variance kept 0.95 / 0.99: raw counts 0.68 / 0.96,
# log(1 + count) 0.75 / 0.96, tf-idf 0.94 / 0.97, sublinear tf-idf 0.78 / 0.98. loglizer: tf-idf, 0.95.
PCA_VARIANCE = 0.99


def unsupervised_estimator(kind: UnsupervisedKind, seed: int) -> IsolationForest | Pipeline:
    if kind == "isolation-forest":
        return IsolationForest(n_estimators=100, max_samples="auto", random_state=seed, n_jobs=1)
    # sublinear tf-idf ((1 + log tf) * smoothed idf), no row norm; PCA centres. Smoothing keeps events present
    # in every normal session (idf 1, not 0 as in loglizer) and gives never-seen ones the largest weight.
    return Pipeline([("tfidf", TfidfTransformer(norm=None, sublinear_tf=True)),
                     ("pca", PCA(n_components=PCA_VARIANCE, svd_solver="full"))])  # fmt: skip


def fit_sessions(kind: UnsupervisedKind, train: pl.DataFrame) -> pl.DataFrame:
    """The training sessions ``kind`` learns from (see the module note): all for the forest, normal for PCA."""
    return train if kind == "isolation-forest" else train.filter(pl.col("label") == 0)


def fit_unsupervised(estimator: IsolationForest | Pipeline, counts: np.ndarray) -> IsolationForest | Pipeline:
    if isinstance(estimator, IsolationForest):
        return estimator.fit(counts)
    tfidf = estimator.named_steps["tfidf"].fit(counts)
    estimator.named_steps["pca"].fit(tfidf.transform(counts).toarray())
    return estimator


def novelty_score(estimator: IsolationForest | Pipeline, counts: np.ndarray) -> np.ndarray:
    """How unlike the training sessions each row is, in [0, 1); higher is more anomalous.

    Isolation forest: the paper's anomaly score 2^(-E[h]/c(n)) (``-score_samples``). It cannot split on a
    feature constant in training, so an event it never saw does not raise the score.
    PCA: the squared prediction error (distance to the normal subspace) s, reported as s / (1 + s). An
    event never seen among normals lies wholly outside that subspace, so it always raises the score.
    """
    if isinstance(estimator, IsolationForest):
        return -estimator.score_samples(counts)
    pca = estimator.named_steps["pca"]
    centred = estimator.named_steps["tfidf"].transform(counts).toarray() - pca.mean_
    residual = centred - (centred @ pca.components_.T) @ pca.components_
    spe = np.einsum("ij,ij->i", residual, residual)
    return spe / (1.0 + spe)
