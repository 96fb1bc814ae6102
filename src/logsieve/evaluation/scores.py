"""Per-session test scores of a run (``test_scores.parquet``): what the study's PR curves are drawn from.

metrics.json holds figures at one threshold; a precision–recall curve needs every test session's score.
Every run directory, RNN or count model, stores them through ``write_scores`` so the study page can be
rebuilt from disk alone, long after the models were trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from logsieve.artifacts import atomic_file

SCORES = "test_scores.parquet"
SCORES_SCHEMA = {"session_id": pl.String, "label": pl.Int8, "score": pl.Float64}


def write_scores(directory: str | Path, sessions: pl.DataFrame, scores: np.ndarray) -> Path:
    """``directory/test_scores.parquet``: session_id, label and score of every session of ``sessions``, in order.
    Scores stay float64 so a curve redrawn from the file gives exactly the PR-AUC in metrics.json."""
    if len(scores) != sessions.height:
        raise ValueError(f"{len(scores)} scores for {sessions.height} sessions")
    table = pl.DataFrame(
        {"session_id": sessions["session_id"].cast(pl.String), "label": sessions["label"].cast(pl.Int8),
         "score": np.asarray(scores, dtype=np.float64)},
        schema=SCORES_SCHEMA,
    )  # fmt: skip
    path = Path(directory) / SCORES
    with atomic_file(path) as tmp:
        table.write_parquet(tmp, compression="zstd")
    return path


def read_scores(run_dir: str | Path) -> pl.DataFrame | None:
    """The stored test scores of a run, or None when it has none (written before runs stored them, or damaged)."""
    path = Path(run_dir) / SCORES
    if not path.is_file():
        return None
    try:
        table = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError):
        return None
    return table if {"label", "score"} <= set(table.columns) else None
