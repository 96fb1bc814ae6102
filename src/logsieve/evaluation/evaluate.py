"""Score a fitted model on held-out sessions: metrics, the unseen-sequence subset, and timing."""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np
import polars as pl

from logsieve.evaluation.metrics import classification_metrics


class Scorer(Protocol):
    threshold_: float

    def score(self, df: pl.DataFrame) -> np.ndarray: ...


def seen_mask(train: pl.DataFrame, df: pl.DataFrame) -> np.ndarray:
    """True where a session's exact event sequence occurs in the training split."""
    known = train["events"].list.join(" ").unique()
    return df["events"].list.join(" ").is_in(known.implode()).to_numpy()


def evaluate_scorer(model: Scorer, test: pl.DataFrame, train: pl.DataFrame | None = None) -> dict[str, Any]:
    """Metrics at the model's threshold. With ``train``, also on the test sessions whose sequence never
    occurs in training: HDFS repeats sequences, so this is the figure that shows generalisation."""
    start = time.perf_counter()
    scores = model.score(test)
    seconds = time.perf_counter() - start
    y = test["label"].to_numpy()
    out: dict[str, Any] = classification_metrics(y, scores, model.threshold_)
    out["score_seconds"] = seconds
    out["sessions_per_second"] = test.height / max(seconds, 1e-9)
    if train is not None:
        unseen = ~seen_mask(train, test)
        out["unseen"] = classification_metrics(y[unseen], scores[unseen], model.threshold_) if unseen.any() else None
    return out

