"""Raw HDFS lines of one request -> block sessions, with the same checks, templates and grouping as ``parse``.

A request is a self-contained piece of log: a block whose lines are spread over two requests becomes two
partial sessions, one per request (the service keeps no state between requests). Bad lines are counted by
reason, never fatal, exactly as in ``logsieve parse``. Line matching is ``watch``'s ``EventSource``; this module
only adds what a JSON list of lines needs (line breaks inside an item) and the grouping into whole sessions.
"""

from __future__ import annotations

import polars as pl

from logsieve.parsing.lines import MALFORMED, RejectStats
from logsieve.serving.bundle import Bundle
from logsieve.serving.format_events import event_source

SOURCE = "request"
_BREAKS = ("\n", "\r")
SESSIONS_SCHEMA: dict[str, pl.DataType] = {
    "session_id": pl.String(), "events": pl.List(pl.String()), "line_numbers": pl.List(pl.Int64()),
    "start_time": pl.Datetime("us"), "end_time": pl.Datetime("us"), "first_line": pl.Int64(), "last_line": pl.Int64(),
}  # fmt: skip


class LineSessionizer:
    """Built once per bundle; safe to call from several request threads at once (as ``EventSource`` is)."""

    def __init__(self, bundle: Bundle) -> None:
        self.source = event_source(bundle)  # HDFS blk_ sessions, or any format as the bundle's parse spec says

    def __call__(self, lines: list[str]) -> tuple[pl.DataFrame, RejectStats]:
        """Lines -> (sessions with the columns of SESSIONS_SCHEMA, in order of first line; reject statistics).
        Line numbers count the request's lines from 1; a session's events are in (time, line) order.

        One trailing line break per line is forgiven; a line with a break inside it is not one log line and is
        rejected as malformed. Lone surrogates go on as invalid UTF-8 and are rejected as ``non_utf8``.
        """
        clean = [line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith("\n") else line for line in lines]
        whole = [not any(b in line for b in _BREAKS) for line in clean]
        kept = [line for line, ok in zip(clean, whole, strict=True) if ok]
        number = pl.Series([i + 1 for i, ok in enumerate(whole) if ok], dtype=pl.Int64)  # kept line -> request line
        data = ("\n".join(kept) + "\n").encode("utf-8", "surrogatepass") if kept else b""
        rows, stats = self.source.parse(data, SOURCE)
        rows, _ = self.source.number(rows, 0)  # windows of N lines count the request's lines
        if broken := len(clean) - len(kept):
            stats.lines += broken
            stats.counts[MALFORMED] += broken
        if rows.height == 0:
            return pl.DataFrame(schema=SESSIONS_SCHEMA), stats
        rows = rows.with_columns(line=number.gather(rows["n"])).sort("time", "line", maintain_order=True)
        sessions = rows.group_by("session_id", maintain_order=True).agg(
            events="event",
            line_numbers="line",
            start_time=pl.col("time").first(),
            end_time=pl.col("time").last(),
            first_line=pl.col("line").min(),
            last_line=pl.col("line").max(),
        )
        return sessions.with_columns(events=self.source.decode(sessions["events"])).select(list(SESSIONS_SCHEMA)), stats
