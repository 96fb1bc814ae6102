"""Score sessions with a bundle: one row per session with its verdict (skeleton; extended by `score`)."""

from __future__ import annotations

import polars as pl

from logsieve.serving.bundle import Bundle


def score_table(bundle: Bundle, sessions: pl.DataFrame) -> pl.DataFrame:
    """session table -> session_id, score, verdict ("anomaly" | "normal"), threshold, events, unknown_events."""
    scores = bundle.model.score(sessions)
    known = set(bundle.vocabulary)
    unknown = sessions["events"].list.eval(pl.element().is_in(list(known)).not_().cast(pl.Int64)).list.sum()
    return pl.DataFrame({
        "session_id": sessions["session_id"],
        "score": scores.astype(float),
        "verdict": pl.Series(["anomaly" if s >= bundle.threshold else "normal" for s in scores], dtype=pl.String),
        "threshold": [bundle.threshold] * sessions.height,
        "events": sessions["events"].list.len(),
        "unknown_events": unknown,
    })
