"""Raw lines of any log format -> one row per (line, session it belongs to), as a bundle's parse spec says, for
``watch`` and ``serve`` (``EventSource`` stays the fast path for HDFS lines in ``blk_`` sessions).

The same reader, templates and session rules as ``parse``/``score`` (``reader.read_chunk``, the bundle's miner
without learning, ``session_keys.with_keys`` and the window arithmetic of ``windows``), a piece of lines at a time.
A time window is over once log time passes its end, so each of its rows carries that end (``end_at``) and
``OpenSessions`` closes it like a block after its end event; a window of N lines is over when its last line
arrives, and since line numbers must count in input order, those windows are assigned in ``number`` by the one
thread that merges pieces in order. A format without times gets the wall time at reading as its line times.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.parsing.formats import CONTENT
from logsieve.parsing.lines import RejectStats
from logsieve.parsing.mining import UNKNOWN, TemplateMiner
from logsieve.parsing.pipeline import NO_TEMPLATE
from logsieve.parsing.reader import read_chunk
from logsieve.parsing.session_keys import with_keys
from logsieve.parsing.spec import ParseSpec
from logsieve.parsing.templates import MASK_CHAR, TemplateMatcher
from logsieve.parsing.windows import (
    line_window_id,
    line_window_range,
    time_window_id,
    time_window_range,
    window_lengths,
)
from logsieve.serving.bundle import Bundle
from logsieve.serving.events import DEFAULT_END_EVENTS, EventSource
from logsieve.serving.scoring import bundle_spec

TIME = pl.Datetime("us")
ROWS_SCHEMA: dict[str, pl.DataType] = {"session_id": pl.String(), "event": pl.UInt16(), "time": TIME,
                                       "n": pl.Int64(), "end_at": TIME}  # fmt: skip


def event_source(bundle: Bundle) -> EventSource | FormatEventSource:
    """The line reader for ``bundle``: the HDFS fast path, or the general one for any other parse spec."""
    spec = bundle_spec(bundle)
    return EventSource(bundle) if spec.hdfs_fast else FormatEventSource(spec, f"bundle {bundle.name!r}")


class FormatEventSource:
    """Built once per bundle; ``parse`` is safe to call from several threads (the miner is used read-only)."""

    def __init__(self, spec: ParseSpec, where: object = "parse spec") -> None:
        self.spec, self.format, rule = spec, spec.format, spec.rule
        source = spec.template_source(where)
        self.matcher = TemplateMatcher() if isinstance(source, str) else None
        self.miner: TemplateMiner | None = None if isinstance(source, str) else source
        self.names = [UNKNOWN, *(c.id for c in self.miner.clusters_)] if self.miner else list(TemplateMatcher().ids)
        if len(self.names) > 65_535:
            raise LogsieveError(f"{len(self.names):,} templates: more than two-byte event codes hold")
        if rule.window is not None and self.format.time is None:
            raise LogsieveError(f"{where}: windows of {rule.window} need times, but format {self.format.name} has none")
        self.window = window_lengths(rule.window, rule.step) if rule.window is not None else None
        self.lines = (rule.lines, int(rule.step or rule.lines)) if rule.lines is not None else None
        self.closes_when_full = self.lines is not None  # a full window of lines is over: no grace to wait

    def parse(self, data: bytes, source: str = "") -> tuple[pl.DataFrame, RejectStats]:
        """Whole lines -> rows (``ROWS_SCHEMA``; ``n`` the line's 0-based index in ``data``) in line order, and
        the counts of rejected lines (never their text). Rows of a ``--lines`` spec get their sessions in
        ``number``."""
        good, chunk_stats = read_chunk(data, self.format, source)
        stats = RejectStats(lines=chunk_stats.lines, counts=chunk_stats.counts)
        good = good.with_columns(event=self._codes(good, stats)).filter(pl.col("event").is_not_null())
        time = pl.col("timestamp") if self.format.time is not None else pl.lit(datetime.now(), TIME)
        lines = good.select(pl.col("n").cast(pl.Int64), "line", "event", time=time)
        rule = self.spec.rule
        if rule.key is not None:
            keyed = with_keys(lines, rule.key)
            has = keyed["keys"].list.len() > 0
            stats.unblocked = int((~has).sum())
            rows = keyed.filter(has).explode("keys").rename({"keys": "session_id"})
            rows = rows.with_columns(end_at=pl.lit(None, TIME))
        elif self.window is not None:
            size, every = self.window
            rows = lines.with_columns(window=time_window_range(pl.col("time"), size, every)).explode("window")
            rows = rows.with_columns(
                session_id=time_window_id(pl.col("window"), every),
                end_at=pl.from_epoch(pl.col("window") * every + size, time_unit="us"),
            )
        else:
            rows = lines.with_columns(session_id=pl.lit(None, pl.String), end_at=pl.lit(None, TIME))
        return rows.select(list(ROWS_SCHEMA)), stats

    def number(self, rows: pl.DataFrame, first: int) -> tuple[pl.DataFrame, int]:
        """``--lines`` windows for rows whose lines come after ``first`` good lines: (rows, lines used). A
        window's last line carries its own time as ``end_at``: the window is full, so it is over."""
        if self.lines is None:
            return rows, 0
        size, step = self.lines
        i = pl.int_range(first, first + rows.height, dtype=pl.Int64)
        out = rows.with_columns(i=i).with_columns(window=line_window_range(pl.col("i"), size, step)).explode("window")
        full = pl.col("i") == pl.col("window") * step + size - 1
        out = out.with_columns(
            session_id=line_window_id(pl.col("window"), step),
            end_at=pl.when(full).then(pl.col("time")).otherwise(pl.lit(None, TIME)),
        )
        return out.select(list(ROWS_SCHEMA)), rows.height

    def _codes(self, good: pl.DataFrame, stats: RejectStats) -> pl.Series:
        """Event code per line; the shipped HDFS templates leave lines without a template null (a reject)."""
        if self.miner is not None:
            ids = self.miner.transform(good[CONTENT]).cast(pl.String)
            return ids.replace_strict(self.names, range(len(self.names)), return_dtype=pl.UInt16)
        assert self.matcher is not None
        codes = self.matcher.codes(good["line"].str.replace_all(r"[0-9]", MASK_CHAR))
        if n_none := int(codes.null_count()):
            stats.counts[NO_TEMPLATE] += n_none
        return codes

    def decode(self, events: pl.Series) -> pl.Series:
        """List[UInt16] codes -> List[String] event ids."""
        n = len(self.names)
        return events.list.eval(pl.element().replace_strict(range(n), self.names, return_dtype=pl.String))

    def end_codes(self, requested: Sequence[str] | None = None) -> list[int]:
        """Codes of events that end a keyed session: ids of this bundle's templates (``--end-events M12``). HDFS's
        default (E23, E30) means nothing outside HDFS templates and is dropped; windows end by time or count."""
        wanted = [w for w in (requested or ()) if not (self.miner is not None and w in DEFAULT_END_EVENTS)]
        unknown = [w for w in wanted if w not in self.names]
        if unknown:
            raise LogsieveError(f"--end-events: {', '.join(unknown)} not among the bundle's events "
                                f"({self.names[0]} … {self.names[-1]})")  # fmt: skip
        return sorted(self.names.index(w) for w in wanted)
