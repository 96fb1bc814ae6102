"""Sessions keyed by an id in the line (``--session-key REGEX``), for any log format.

HDFS names blocks (``blk_…``), OpenStack instances, Hadoop attempts: a line belongs to every distinct id it names,
as the HDFS path does for blocks. A regex with a capture group keys on the group (``instance: (\\S+)`` keys on the
id alone, not the words around it). A session's events are in (time, line) order; it is anomalous when any of its
lines is (per-line labels), unlabelled when the lines carry none.
"""

from __future__ import annotations

import re

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.table import validate_sessions


def check_key(regex: str) -> re.Pattern[str]:
    """The session-key regex, compiled in both Python and polars (Rust) syntax, or one clear error."""
    try:
        compiled = re.compile(regex)
        pl.Series([""]).str.extract_all(regex)
    except (re.error, pl.exceptions.ComputeError) as exc:
        first = str(exc).splitlines()[0]
        raise LogsieveError(f"--session-key {regex!r} is not a usable regex: {first}") from None
    if compiled.groups > 1:
        raise LogsieveError(f"--session-key {regex!r} has {compiled.groups} capture groups; use at most one")
    return compiled


def with_keys(lines: pl.DataFrame, regex: str, column: str = "line") -> pl.DataFrame:
    """Add ``keys``: the distinct ids each line names, in order of appearance (empty list: none)."""
    compiled = check_key(regex)
    found = pl.col(column).str.extract_all(regex)
    if compiled.groups == 1:
        found = found.list.eval(pl.element().str.extract(regex, 1)).list.drop_nulls()
    return lines.with_columns(keys=found.list.unique(maintain_order=True))


def key_sessions(lines: pl.DataFrame) -> pl.DataFrame:
    """Lines with ``keys``, ``event``, ``line_number`` (and ``timestamp``, ``label`` when known) -> the session
    table, sessions in order of their first line."""
    has_time = "timestamp" in lines.columns
    order = ["timestamp", "line_number"] if has_time else ["line_number"]
    rows = lines.explode("keys").drop_nulls("keys").sort(order, maintain_order=True)
    aggs = [pl.col("event").alias("events"), pl.col("line_number").cast(pl.Int64).alias("line_numbers"),
            pl.col("line_number").min().alias("_first")]  # fmt: skip
    if has_time:
        aggs += [pl.col("timestamp").min().alias("start_time"), pl.col("timestamp").max().alias("end_time")]
    has_label = "label" in lines.columns
    aggs.append(pl.col("label").any().cast(pl.Int8) if has_label else pl.lit(None, pl.Int8).alias("label"))
    # maintain_order twice: sessions that start on the same line keep a fixed order (else polars' hash order)
    out = rows.group_by("keys", maintain_order=True).agg(aggs).sort("_first", maintain_order=True)
    out = out.drop("_first").rename({"keys": "session_id"})
    checked = validate_sessions(out, "sessions")
    return checked.with_columns(out["end_time"]) if has_time else checked
