"""Classical baselines on event-count vectors (scikit-learn), scored on the same splits as the RNNs.

They share the Detector's interface (fit(train, val) -> self, score, predict, threshold_) so a study can
put them in the same table. Supervised kinds fit on distinct rows with counts as sample weights (1-NN on
distinct count vectors, see ``_nearest``); the unsupervised kinds (``models.unsupervised``) fit without
labels (PCA on normal training sessions only). Every score lies in [0, 1] and the threshold is tuned on validation.
They persist without pickle: the estimator as a skops file loaded against an explicit per-kind list of
trusted types, everything else as JSON.
"""

from __future__ import annotations

import copy
import time
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from logsieve.artifacts import atomic_file, available_cpus, read_json, write_json
from logsieve.errors import LogsieveError
from logsieve.evaluation.metrics import best_threshold
from logsieve.features.counts import count_features, count_vectors
from logsieve.features.encoding import collapse
from logsieve.features.vocabulary import Vocabulary
from logsieve.models.unsupervised import (
    UNSUPERVISED,
    fit_sessions,
    fit_unsupervised,
    novelty_score,
    unsupervised_estimator,
)

BaselineKind = Literal[
    "decision-tree", "random-forest", "logistic-regression", "count-mlp", "1-nn", "linear-svm",
    "hist-gradient-boosting", "isolation-forest", "pca",
]  # fmt: skip
SUPERVISED: tuple[BaselineKind, ...] = (
    "decision-tree", "random-forest", "logistic-regression", "count-mlp", "1-nn", "linear-svm",
    "hist-gradient-boosting",
)  # fmt: skip
BASELINES: tuple[BaselineKind, ...] = (*SUPERVISED, *UNSUPERVISED)
ESTIMATOR, STATE = "model.skops", "baseline.json"
# Types beyond skops' own safe defaults that each kind's file may hold (what skops.io.get_untrusted_types
# reports for a fitted model); anything else in a file refuses to load. The MLP's Adam state is dropped on save.
TRUSTED: dict[str, tuple[str, ...]] = {
    "decision-tree": ("sklearn.tree._tree.Tree",),
    "random-forest": ("sklearn.tree._tree.Tree",),
    "logistic-regression": (),
    "count-mlp": (),
    "1-nn": (),
    "linear-svm": (),
    "hist-gradient-boosting": ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",),
    "isolation-forest": ("sklearn.tree._tree.Tree",),
    "pca": (),
}


def _estimator(kind: BaselineKind, seed: int):
    if kind == "decision-tree":
        return DecisionTreeClassifier(random_state=seed)
    if kind == "random-forest":
        # The trees are the same whatever n_jobs is (random_state fixes them); use the CPUs this process may run on.
        return RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=available_cpus())
    if kind == "count-mlp":  # the RNNs' exact-count features alone: does the sequence model add anything?
        return MLPClassifier((128, 128), learning_rate_init=3e-3, max_iter=300, random_state=seed)
    if kind == "1-nn":  # brute force: no search tree to store (and trust); distinct vectors are few
        return KNeighborsRegressor(n_neighbors=1, algorithm="brute")
    if kind == "linear-svm":
        return LinearSVC(C=1.0, max_iter=10_000, random_state=seed)
    if kind == "hist-gradient-boosting":
        # min_samples_leaf counts distinct rows, not sessions: the default 20 cannot isolate a common anomalous
        # vector that is one row (validation F1 0.76 vs 0.998 on the public sample)
        return HistGradientBoostingClassifier(min_samples_leaf=1, random_state=seed)
    if kind in UNSUPERVISED:
        return unsupervised_estimator(kind, seed)
    return LogisticRegression(max_iter=2000, C=10.0)


class CountBaseline:
    """A scikit-learn classifier on event-count vectors; threshold tuned on validation like the RNNs."""

    def __init__(self, kind: BaselineKind, seed: int = 0, threshold: Literal["fixed", "tuned"] = "tuned") -> None:
        self.kind, self.seed, self.threshold = kind, seed, threshold

    def fit(self, train: pl.DataFrame, val: pl.DataFrame) -> CountBaseline:
        start = time.perf_counter()
        self.vocab_ = Vocabulary().fit(train["events"])  # label-free, so the unsupervised kinds share it
        self.estimator_ = _estimator(self.kind, self.seed)
        with threadpool_limits(1, user_api="openmp"):  # OpenMP on 2 busy cores: HGB 0.8 s alone, 14-27 s with 2
            self._fit_estimator(train)
            self.threshold_ = 0.5
            if self.threshold == "tuned":
                self.threshold_ = best_threshold(val["label"].to_numpy(), self.score(val))
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _fit_estimator(self, train: pl.DataFrame) -> None:
        if self.kind in UNSUPERVISED:  # no labels (PCA: normal sessions only); they only set the threshold
            sessions = fit_sessions(self.kind, train)
            self.estimator_ = fit_unsupervised(self.estimator_, self._features(sessions["events"]))
        else:
            rows = collapse(train)
            x, y, w = self._features(rows["events"]), rows["label"].to_numpy(), rows["count"].to_numpy()
            if self.kind == "1-nn":
                x, y = _nearest(x, y, w)
                self.estimator_.fit(x, y)
            else:
                self.estimator_.fit(x, y, sample_weight=w.astype(float))

    def score(self, df: pl.DataFrame) -> np.ndarray:
        """Anomaly scores in [0, 1]: a probability, except for 1-NN (anomalous share of the nearest training
        vector's sessions), the SVM (sigmoid of the margin) and the unsupervised kinds (novelty)."""
        x = self._features(df["events"])
        if self.kind in UNSUPERVISED:
            return novelty_score(self.estimator_, x)
        if self.kind == "1-nn":
            return self.estimator_.predict(x)
        if self.kind == "linear-svm":
            return expit(self.estimator_.decision_function(x))
        return self.estimator_.predict_proba(x)[:, 1]

    def _features(self, events: pl.Series) -> np.ndarray:
        counts = count_vectors(self.vocab_, events)
        if self.kind == "linear-svm":  # log keeps one long session from dominating the margin
            return np.log1p(counts)
        if self.kind != "count-mlp":
            return counts
        return count_features(torch.from_numpy(counts), "exact").numpy()  # as RNNClassifier(counts="exact")

    def predict(self, df: pl.DataFrame) -> np.ndarray:
        return (self.score(df) >= self.threshold_).astype(np.int8)

    def get_config(self) -> dict[str, Any]:
        """What defines this model besides its data: kind, seed, threshold rule and the estimator's settings."""
        est = self.estimator_ if hasattr(self, "estimator_") else _estimator(self.kind, self.seed)
        params = {k: v if isinstance(v, (bool, int, float, str, type(None))) else str(v)
                  for k, v in est.get_params(deep=False).items()}  # fmt: skip
        return {"baseline": self.kind, "seed": self.seed, "threshold_rule": self.threshold,
                "estimator": type(est).__name__, "params": params}  # fmt: skip

    # --- persistence (no pickle: skops with an explicit trusted-types list, plus JSON) --------------
    def save(self, directory: str | Path) -> None:
        """Write ``model.skops`` and ``baseline.json`` (vocabulary, threshold, kind, seed) into ``directory``."""
        if not hasattr(self, "estimator_"):
            raise LogsieveError("baseline is not fitted: call fit() or CountBaseline.load(run_dir)")
        directory = Path(directory)
        est = self.estimator_
        if hasattr(est, "_optimizer"):  # the MLP's Adam moments: training-only state, twice the file size
            est = copy.copy(est)
            del est._optimizer
        with atomic_file(directory / ESTIMATOR) as tmp:
            import skops.io as sio  # lazily: importing skops imports all of scikit-learn (seconds)

            sio.dump(est, tmp, compression=zipfile.ZIP_DEFLATED)  # forest arrays shrink ~10x
        write_json(directory / STATE, {
            **self.get_config(), "kind": self.kind, "threshold": self.threshold_,
            "vocabulary": self.vocab_.to_dict(),
        })  # fmt: skip

    @classmethod
    def load(cls, directory: str | Path) -> CountBaseline:
        """Read what ``save`` wrote; refuses a skops file holding any type outside ``TRUSTED[kind]``."""
        directory = Path(directory)
        if not (directory / STATE).is_file() or not (directory / ESTIMATOR).is_file():
            raise LogsieveError(f"{directory}: not a baseline run directory (needs {STATE} and {ESTIMATOR})")
        state = read_json(directory / STATE, "baseline state")
        try:
            kind, seed, mode = state["kind"], int(state["seed"]), state["threshold_rule"]
            threshold, vocab = float(state["threshold"]), Vocabulary.from_dict(state["vocabulary"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LogsieveError(f"{directory / STATE}: baseline state is damaged ({exc!r})") from None
        if mode not in ("fixed", "tuned") or not 0 <= threshold <= 1:
            raise LogsieveError(f"{directory / STATE}: baseline state is damaged (threshold {mode!r} {threshold})")
        if kind not in BASELINES:
            raise LogsieveError(f"{directory / STATE}: unknown baseline kind {kind!r}; known: {', '.join(BASELINES)}")
        model = cls(kind, seed=seed, threshold=mode)
        model.estimator_ = load_estimator(directory / ESTIMATOR, kind)
        model.vocab_, model.threshold_ = vocab, threshold
        return model

    def n_parameters(self) -> int:
        """Learned numbers: tree nodes, weights, stored vectors (1-NN) or components (PCA)."""
        est = self.estimator_
        if hasattr(est, "_predictors"):  # hist gradient boosting
            return int(sum(p.nodes.size for it in est._predictors for p in it))
        if hasattr(est, "_fit_X"):  # 1-NN stores its distinct training vectors
            return int(est._fit_X.size)
        if hasattr(est, "named_steps"):  # PCA behind tf-idf
            pca = est.named_steps["pca"]
            return int(pca.components_.size + pca.mean_.size + est.named_steps["tfidf"].idf_.size)
        if hasattr(est, "tree_"):
            return int(est.tree_.node_count)
        if hasattr(est, "estimators_"):
            return int(sum(t.tree_.node_count for t in est.estimators_))
        if hasattr(est, "coefs_"):
            return int(sum(w.size for w in est.coefs_) + sum(b.size for b in est.intercepts_))
        return int(est.coef_.size + est.intercept_.size)


def load_estimator(path: Path, kind: BaselineKind) -> Any:
    """skops-load a fitted estimator of ``kind``, trusting only ``TRUSTED[kind]`` beyond skops' defaults."""
    try:
        import skops.io as sio  # lazily, as in save

        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - a damaged zip or schema: any error means "not a model file"
        raise LogsieveError(f"{path}: not a readable skops model file ({type(exc).__name__}: {exc})") from None
    unexpected = sorted(set(untrusted) - set(TRUSTED[kind]))
    if unexpected:
        raise LogsieveError(f"{path}: refusing to load types not expected in a {kind} model: {', '.join(unexpected)}")
    try:
        est = sio.load(path, trusted=list(TRUSTED[kind]))
    except Exception as exc:  # noqa: BLE001 - e.g. an estimator layout this scikit-learn does not know
        raise LogsieveError(f"{path}: cannot load the {kind} model ({type(exc).__name__}: {exc})") from None
    expected = type(_estimator(kind, 0))
    if not isinstance(est, expected):
        raise LogsieveError(f"{path}: holds a {type(est).__name__}, expected a {expected.__name__}")
    return est


def _nearest(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-NN training set: each distinct count vector once, with the share of its sessions that are anomalous.

    sklearn's nearest neighbours take no sample weights, and on raw rows a duplicated vector with mixed
    labels would answer by whichever copy comes first. One row per vector with its anomalous share makes
    the score the vote of all its sessions (majority = share > 0.5) and leaves the cut to validation.
    """
    vectors, inverse = np.unique(x, axis=0, return_inverse=True)
    sessions = np.bincount(inverse, weights=weight)
    anomalous = np.bincount(inverse, weights=weight * (y == 1))
    return vectors, anomalous / sessions
