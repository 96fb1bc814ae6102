"""Classical baselines on event-count vectors (scikit-learn), scored on the same splits as the RNNs.

They share the Detector's interface (fit(train, val) -> self, score, predict, threshold_) so a study can
put them in the same table. Like the RNNs they fit on distinct rows with counts as sample weights.
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
import skops.io as sio
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier

from logsieve.artifacts import atomic_file, read_json, write_json
from logsieve.errors import LogsieveError
from logsieve.evaluation.metrics import best_threshold
from logsieve.features.counts import count_features, count_vectors
from logsieve.features.encoding import collapse
from logsieve.features.vocabulary import Vocabulary

BaselineKind = Literal["decision-tree", "random-forest", "logistic-regression", "count-mlp"]
BASELINES: tuple[BaselineKind, ...] = ("decision-tree", "random-forest", "logistic-regression", "count-mlp")
ESTIMATOR, STATE = "model.skops", "baseline.json"
# Types beyond skops' own safe defaults that each kind's file may hold (what skops.io.get_untrusted_types
# reports for a fitted model); anything else in a file refuses to load. The MLP's Adam state is dropped on save.
TRUSTED: dict[str, tuple[str, ...]] = {
    "decision-tree": ("sklearn.tree._tree.Tree",),
    "random-forest": ("sklearn.tree._tree.Tree",),
    "logistic-regression": (),
    "count-mlp": (),
}


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
        est = self.estimator_
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
