"""Score a fitted model on held-out sessions: metrics, the unseen-sequence subset, and timing."""

from __future__ import annotations

import time
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl

from logsieve.evaluation.metrics import classification_metrics
from logsieve.table import sequence_keys


class Scorer(Protocol):
    threshold_: float

    def score(self, df: pl.DataFrame) -> np.ndarray: ...


def seen_mask(train: pl.DataFrame, df: pl.DataFrame) -> np.ndarray:
    """True where a session's exact event sequence occurs in the training split."""
    known = sequence_keys(train["events"], "sequence").unique()
    return sequence_keys(df["events"], "sequence").is_in(known.implode()).to_numpy()


def label_conflicts(train: pl.DataFrame, test: pl.DataFrame, by: Literal["sequence", "counts"]) -> np.ndarray:
    """True where a test session's label is the minority label of its training twins (same sequence, or
    same event counts). A model that agrees with its training data gets these wrong, so they cap what such
    a model can reach — on HDFS, the few errors at the top of a table are mostly these."""
    majority = (
        pl.DataFrame({"key": sequence_keys(train["events"], by), "label": train["label"]})
        .group_by("key")
        .agg(share=pl.col("label").mean())
    )
    joined = pl.DataFrame({"key": sequence_keys(test["events"], by), "label": test["label"]}).join(
        majority, on="key", how="left", maintain_order="left"
    )
    wrong = ((pl.col("share") > 0.5) & (pl.col("label") == 0)) | ((pl.col("share") < 0.5) & (pl.col("label") == 1))
    return joined.select(wrong.fill_null(False))[:, 0].to_numpy()


def conflict_summary(train: pl.DataFrame, test: pl.DataFrame) -> dict[str, dict[str, float | int]]:
    """Per twin kind: conflicting normals (forced FP), anomalies (forced FN) and the F1 if only they are wrong."""
    y = test["label"].to_numpy()
    out = {}
    for by in ("counts", "sequence"):
        conflict = label_conflicts(train, test, by)
        fp, fn = int((conflict & (y == 0)).sum()), int((conflict & (y == 1)).sum())
        tp = int((y == 1).sum()) - fn
        out[by] = {"fp": fp, "fn": fn, "f1_ceiling": 2 * tp / max(2 * tp + fp + fn, 1)}
    return out


def evaluate_scorer(model: Scorer, test: pl.DataFrame, train: pl.DataFrame | None = None) -> dict[str, Any]:
    """Metrics at the model's threshold. With ``train``, also on the test sessions whose sequence never
    occurs in training: HDFS repeats sequences, so this is the figure that shows generalisation."""
    return score_and_evaluate(model, test, train)[0]


def score_and_evaluate(
    model: Scorer, test: pl.DataFrame, train: pl.DataFrame | None = None
) -> tuple[dict[str, Any], np.ndarray]:
    """``evaluate_scorer`` plus the scores it computed, for a caller that stores them (one scoring pass)."""
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
    return out, scores
