"""Classical baselines on event-count vectors (scikit-learn), scored on the same splits as the RNNs.

They share the Detector's interface (fit(train, val) -> self, score, predict, threshold_) so a study can
put them in the same table. Like the RNNs they fit on distinct rows with counts as sample weights.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
import polars as pl
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier

from logsieve.evaluation.metrics import best_threshold
from logsieve.features.counts import count_features, count_vectors
from logsieve.features.encoding import collapse
from logsieve.features.vocabulary import Vocabulary

BaselineKind = Literal["decision-tree", "random-forest", "logistic-regression", "count-mlp"]
BASELINES: tuple[BaselineKind, ...] = ("decision-tree", "random-forest", "logistic-regression", "count-mlp")


def _estimator(kind: BaselineKind, seed: int):
    if kind == "decision-tree":
        return DecisionTreeClassifier(random_state=seed)
    if kind == "random-forest":
        return RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=2)
    if kind == "count-mlp":  # the RNNs' exact-count features alone: does the sequence model add anything?
        return MLPClassifier((128, 128), learning_rate_init=3e-3, max_iter=300, random_state=seed)
    return LogisticRegression(max_iter=2000, C=10.0)


class CountBaseline:
    """A scikit-learn classifier on event-count vectors; threshold tuned on validation like the RNNs."""

    def __init__(self, kind: BaselineKind, seed: int = 0, threshold: Literal["fixed", "tuned"] = "tuned") -> None:
        self.kind, self.seed, self.threshold = kind, seed, threshold

    def fit(self, train: pl.DataFrame, val: pl.DataFrame) -> CountBaseline:
        start = time.perf_counter()
        self.vocab_ = Vocabulary().fit(train["events"])
        rows = collapse(train)
        self.estimator_ = _estimator(self.kind, self.seed)
        x = self._features(rows["events"])
        self.estimator_.fit(x, rows["label"].to_numpy(), sample_weight=rows["count"].to_numpy().astype(float))
        self.threshold_ = 0.5
        if self.threshold == "tuned":
            self.threshold_ = best_threshold(val["label"].to_numpy(), self.score(val))
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def score(self, df: pl.DataFrame) -> np.ndarray:
        return self.estimator_.predict_proba(self._features(df["events"]))[:, 1]

    def _features(self, events: pl.Series) -> np.ndarray:
        counts = count_vectors(self.vocab_, events)
        if self.kind != "count-mlp":
            return counts
        return count_features(torch.from_numpy(counts), "exact").numpy()  # as RNNClassifier(counts="exact")

    def predict(self, df: pl.DataFrame) -> np.ndarray:
        return (self.score(df) >= self.threshold_).astype(np.int8)

    def n_parameters(self) -> int:
        est = self.estimator_
        if hasattr(est, "tree_"):
            return int(est.tree_.node_count)
        if hasattr(est, "estimators_"):
            return int(sum(t.tree_.node_count for t in est.estimators_))
        if hasattr(est, "coefs_"):
            return int(sum(w.size for w in est.coefs_) + sum(b.size for b in est.intercepts_))
        return int(est.coef_.size + est.intercept_.size)
