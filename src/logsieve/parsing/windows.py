"""Sessions for logs without a session id: fixed or sliding time windows, or a fixed number of lines.

Systems such as BGL, Thunderbird or HPC name no job or block in their lines; the usual unit of detection there is
a time window (Loghub/LogPAI: fixed 60 s or sliding windows) or a run of N lines. A window's label comes from its
lines: it is anomalous when any line is (per-line labels such as BGL's first field), unlabelled when the lines carry
no label. Input is the line table of ``reader.read_format`` plus an ``event`` column (template id per line).
"""

from __future__ import annotations

import re
from datetime import timedelta

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.table import validate_sessions

_UNITS = {"ms": 1e-3, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)?\s*$")


def parse_duration(text: str | float | timedelta, what: str = "--window") -> timedelta:
    """'60s', '5m', '1.5h', '500ms', '2d' or plain seconds -> a positive timedelta; else one clear error."""
    if isinstance(text, timedelta):
        value = text
    elif isinstance(text, (int, float)):
        value = timedelta(seconds=float(text))
    else:
        m = _DURATION.match(text)
        if not m:
            raise LogsieveError(f"{what} {text!r} is not a duration: write e.g. 60s, 5m, 1h, 500ms or 2d")
        value = timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2) or "s"])
    if value <= timedelta(0):
        raise LogsieveError(f"{what} must be longer than zero (got {text!r})")
    return value


def time_windows(
    lines: pl.DataFrame, window: str | float | timedelta, step: str | float | timedelta | None = None
) -> pl.DataFrame:
    """Sessions of ``window`` length starting every ``step`` (default: ``window``, i.e. fixed, non-overlapping).

    Windows are aligned to multiples of ``step`` since 1970 and half-open [start, start + window); a line belongs
    to every window that covers it; windows without lines are not sessions."""
    size = parse_duration(window, "--window")
    every = size if step is None else parse_duration(step, "--step")
    if every > size:
        raise LogsieveError(f"--step ({every}) must not be longer than --window ({size}): lines would be skipped")
    _require(lines, "timestamp")
    rows = lines.sort("timestamp", "line_number", maintain_order=True)
    size_us, every_us = _us(size), _us(every)
    exploded = rows.with_columns(window=time_window_range(pl.col("timestamp"), size_us, every_us)).explode("window")
    out = _group(exploded, "window")
    return _finish(out, out.select(time_window_id(pl.col("window"), every_us).alias("session_id")).to_series())


def window_lengths(window: str, step: str | None) -> tuple[int, int]:
    """``--window`` and ``--step`` in whole microseconds (``watch`` and ``serve`` window lines as ``parse`` does)."""
    size = parse_duration(window, "--window")
    every = size if step is None else parse_duration(step, "--step")
    return _us(size), _us(every)


def time_window_range(time: pl.Expr, size_us: int, every_us: int) -> pl.Expr:
    """The windows covering each line's time: window k covers [k*every, k*every + size), so a line at t is in
    k = ceil((t - size + 1) / every) .. floor(t / every)."""
    t = time.dt.epoch("us")
    first = (t - size_us + 1 + every_us - 1).floordiv(every_us)  # ceil for the integer division
    return pl.int_ranges(first, t.floordiv(every_us) + 1)


def time_window_id(window: pl.Expr, every_us: int) -> pl.Expr:
    """Window k's session id: its start time."""
    return pl.from_epoch(window * every_us, time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%S%.f")


def line_window_range(i: pl.Expr, size: int, step: int) -> pl.Expr:
    """The windows of ``size`` lines every ``step`` lines that hold line ``i`` (0-based)."""
    i = i.cast(pl.Int64)
    first = (i - size + 1 + step - 1).floordiv(step).clip(lower_bound=0)
    return pl.int_ranges(first, i.floordiv(step) + 1)


def line_window_id(window: pl.Expr, step: int) -> pl.Expr:
    """Window k's session id: ``L`` and the number of its first line."""
    return "L" + (window * step + 1).cast(pl.String)


def line_windows(lines: pl.DataFrame, size: int, step: int | None = None) -> pl.DataFrame:
    """Sessions of ``size`` consecutive lines starting every ``step`` lines (default ``size``); the last window may
    be shorter. Line order is ``line_number`` (input order), not time."""
    step = size if step is None else step
    if size < 1 or step < 1:
        raise LogsieveError(f"a window of lines needs a size and step of at least 1 (got size {size}, step {step})")
    if step > size:
        raise LogsieveError(
            f"the step ({step} lines) must not exceed the window ({size} lines): lines would be skipped"
        )
    rows = lines.sort("line_number", maintain_order=True).with_row_index("i")
    exploded = rows.with_columns(window=line_window_range(pl.col("i"), size, step)).explode("window")
    out = _group(exploded, "window")
    return _finish(out, out.select(line_window_id(pl.col("window"), step).alias("session_id")).to_series())


def _group(rows: pl.DataFrame, key: str) -> pl.DataFrame:
    _require(rows, "event")
    has_label = "label" in rows.columns
    has_time = "timestamp" in rows.columns
    aggs = [pl.col("event").cast(pl.String).alias("events"), pl.col("line_number").cast(pl.Int64).alias("line_numbers")]
    if has_time:
        aggs += [pl.col("timestamp").min().alias("start_time"), pl.col("timestamp").max().alias("end_time")]
    aggs.append(
        pl.col("label").any().cast(pl.Int8).alias("label") if has_label else pl.lit(None, pl.Int8).alias("label")
    )
    return rows.group_by(key, maintain_order=True).agg(aggs).sort(key)


def _finish(out: pl.DataFrame, session_id: pl.Series) -> pl.DataFrame:
    out = out.with_columns(session_id).drop("window")
    checked = validate_sessions(out, "windows")
    extra = [c for c in ("end_time",) if c in out.columns and c not in checked.columns]
    return checked.with_columns(out.select(extra)) if extra else checked


def _require(lines: pl.DataFrame, column: str) -> None:
    if column not in lines.columns:
        raise LogsieveError(f"windows need a {column!r} column in the line table (has {lines.columns})")


def _us(delta: timedelta) -> int:
    return max(1, round(delta.total_seconds() * 1_000_000))
