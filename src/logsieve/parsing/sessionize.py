"""Event-per-line table -> block sessions (the session table of `logsieve.table`).

A line belongs to every block it names (``BLOCK* ask … to delete blk_1 blk_2`` feeds two sessions); a block
named twice in one line (``Deleting block blk_1 file …/blk_1``) counts once. A session's events are in time
order, ties broken by line number, which for HDFS (one-second timestamps, file order) is the file order.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import cast

import polars as pl

from logsieve.table import join_labels, validate_sessions

BLOCK_RE = r"blk_-?[0-9]+"


def with_block_ids(lines: pl.DataFrame, column: str = "line") -> pl.DataFrame:
    """Add ``blocks``: the distinct block ids each line names, in order of appearance (empty list: none)."""
    return lines.with_columns(blocks=pl.col(column).str.extract_all(BLOCK_RE).list.unique(maintain_order=True))


def group_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """Lines (``blocks``, ``timestamp``, ``line_number``, ``event``) -> partial sessions of just these lines:
    session_id, events, line_numbers, times, each in (time, line) order; sessions in order of first line."""
    rows = (
        lines.select(pl.col("blocks").alias("session_id"), "timestamp", "line_number", "event")
        .explode("session_id")
        .drop_nulls("session_id")
    )
    if not (rows["line_number"].is_sorted() and rows["timestamp"].is_sorted()):
        rows = rows.sort("timestamp", "line_number", maintain_order=True)
    return rows.group_by("session_id", maintain_order=True).agg(
        events=pl.col("event"), line_numbers=pl.col("line_number"), times=pl.col("timestamp")
    )


def _span(times: pl.Series) -> tuple[datetime, datetime]:
    """First and last time of a piece; never None, as lines without a valid time were rejected before."""
    return cast(datetime, times.list.first().min()), cast(datetime, times.list.last().max())


def merge_groups(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Partial sessions of consecutive pieces of the input -> whole sessions (without labels).

    When each piece ends no later (in time and line) than the next begins, which is the case for a log
    written in time order, a session is the concatenation of its partials; otherwise its lines are re-sorted.
    """
    parts = [p for p in parts if p.height]
    bounds = [_span(p["times"]) for p in parts]
    in_order = all(end <= nxt for (_, end), (nxt, _) in zip(bounds, bounds[1:], strict=False))
    groups = pl.concat(parts)
    if not in_order:
        rows = groups.explode("events", "line_numbers", "times").sort("times", "line_numbers", maintain_order=True)
        groups = rows.group_by("session_id", maintain_order=True).agg("events", "line_numbers", "times")
    return groups.group_by("session_id", maintain_order=True).agg(
        pl.col("events").list.explode(),
        pl.col("line_numbers").list.explode(),
        start_time=pl.col("times").first().list.first(),
        end_time=pl.col("times").last().list.last(),
    )


def add_labels(sessions: pl.DataFrame, labels: str | Path | pl.DataFrame | None = None) -> pl.DataFrame:
    """Join labels (anomaly_label.csv path or a session_id, label table; missing blocks get null) and check the
    table. Returns session_id, label, events, start_time, line_numbers and end_time."""
    sessions = join_labels(sessions, labels)
    out = validate_sessions(sessions.with_columns(pl.col("line_numbers").cast(pl.List(pl.Int64))), "sessions")
    return out.with_columns(sessions["end_time"])  # validate_sessions keeps only the shared columns


def sessionize(lines: pl.DataFrame, labels: str | Path | pl.DataFrame | None = None) -> pl.DataFrame:
    """Group lines into labelled block sessions in one go (``group_lines`` + ``merge_groups`` + ``add_labels``).

    ``lines`` has ``blocks`` (list[str]), ``event`` (str), ``timestamp`` (datetime) and ``line_number`` (int).
    """
    return add_labels(merge_groups([group_lines(lines)]), labels)
