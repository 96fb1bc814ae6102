"""Score a fitted model on held-out sessions: metrics, the unseen-sequence subset, and timing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
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


def evaluate_run(
    run_dir: str | Path, data: str | Path, split: str = "all", labels: str | Path | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Load a run directory and score ``data`` with it. ``split="test"`` rebuilds the run's own test split,
    which is only allowed on the very data it was trained on (checked by sha256)."""
    from logsieve.artifacts import write_json
    from logsieve.data.load import load_with_info
    from logsieve.data.sessions import require_labels
    from logsieve.training.detector import Detector
    from logsieve.training.run import make_splits

    if split not in ("all", "test"):
        raise LogsieveError(f"--split must be 'all' or 'test', got {split!r}")
    detector = Detector.load(run_dir)
    sessions, info = load_with_info(data, labels)
    train = None
    if split == "test":
        recorded = json.loads((Path(run_dir) / "config.json").read_text())["data"]["sha256"]
        if recorded != info.sha256:
            raise LogsieveError(f"{data} is not the data {run_dir} was trained on (sha256 differs); use --split all")
        train, _, sessions = make_splits(sessions, detector.config, data)
    require_labels(sessions, data, both_classes=False)
    metrics = evaluate_scorer(detector, sessions, train=train)
    metrics["data"] = info.__dict__
    metrics["split"] = split
    if out is not None:
        write_json(out, metrics)
    return metrics
