"""Where ``watch`` writes: JSON lines appended to a file (or stdout), each flushed as it is written, in the
format of ``score --out X.jsonl`` plus ``closed`` and ``partial``, and with ``--explain`` an explanation per alert.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.serving.bundle import Bundle


def alert_lines(bundle: Bundle, rows: pl.DataFrame, explain: bool) -> list[str]:
    """Scored rows (``score_table`` columns, ``closed``, ``partial``, and the helper columns ``_alert`` and
    ``_events``) -> JSON lines; with ``explain`` each alert gets an ``explanation`` (null for other rows)."""
    lines = rows.drop("_alert", "_events").write_ndjson().splitlines()
    if not explain:
        return lines
    from logsieve.serving.explain import explain_sessions

    flagged = rows.with_row_index("_row").filter("_alert")
    sessions = flagged.select("session_id", events="_events")
    notes = explain_sessions(bundle, sessions, flagged["score"].to_numpy()) if flagged.height else []
    by_row = dict(zip(flagged["_row"].to_list(), notes, strict=True))
    return [line[:-1] + ', "explanation": ' + json.dumps(by_row.get(i), ensure_ascii=False, default=str) + "}"
            for i, line in enumerate(lines)]  # fmt: skip


class AlertWriter:
    """JSON lines appended to a file (or stdout), each flushed as it is written."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.broken = False
        try:
            self._f = open(path, "ab") if path is not None else sys.stdout.buffer  # noqa: SIM115
        except OSError as exc:
            raise LogsieveError(f"{path}: cannot open for appending ({exc.strerror})") from None

    def write(self, lines: list[str]) -> None:
        if self.broken:
            return
        try:
            for line in lines:
                self._f.write(line.encode() + b"\n")
                self._f.flush()
        except BrokenPipeError:  # e.g. `| head`: stop quietly, as other tools do
            self.broken = True
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._f.fileno())

    def sync(self) -> int | None:
        """Make what was written durable; the file's size (None for stdout)."""
        if self.path is None or self.broken:
            return None
        self._f.flush()
        os.fsync(self._f.fileno())
        return self._f.tell()

    def close(self) -> None:
        if self.path is not None:
            self._f.close()
