"""Block sessions that are still receiving lines: one row each, in a few polars tables (``OpenSessions``).

Rows of a new piece of log are grouped per block and merged with one join, so following a log costs a few table
operations per piece, not Python work per line. Each event is one Int64 that packs its line's time (whole
seconds, as HDFS logs have them) and its event code, so a session is ONE list column to append to: half the
copying of separate event and time lists. A session's events end up in the order ``logsieve parse`` gives them
(time, then line): pieces that arrive in time order are simply appended; a session that received an
earlier-timed line later (two logs followed together) is flagged and re-sorted, stably by time, when it closes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timedelta

import polars as pl

from logsieve.errors import LogsieveError

TIME = pl.Datetime("us")
CODES = 1 << 16  # event codes are UInt16
_EPOCH_SHIFT = 2_208_988_800  # seconds from 1900 to 1970: packed times stay positive for any %y year
SCHEMA: dict[str, pl.DataType] = {
    "session_id": pl.String(),
    "events": pl.List(pl.Int64),  # (seconds since 1900) * CODES + event code, in arrival order
    "first_seq": pl.Int64(),  # global line number (0-based) of its first line
    "last_seq": pl.Int64(),  # ... of its last line: eviction takes the smallest
    "max_time": TIME,
    "end_time": TIME,  # time of its first block-ending event, if any
    "unsorted": pl.Boolean(),  # received a line earlier in time than one it had
}
_NO_EVENTS = pl.lit([], dtype=pl.List(pl.Int64))

# why a session was closed; the last three cut it short ("partial": more lines may have come)
END, IDLE, QUIET, EVICTED, SHUTDOWN, EOF = "end", "idle", "quiet", "evicted", "shutdown", "eof"
PARTIAL = (EVICTED, SHUTDOWN, EOF)


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def _none_closed() -> pl.DataFrame:
    return empty().with_columns(closed=pl.lit(None, pl.String))


def pack(time: pl.Expr, event: pl.Expr) -> pl.Expr:
    return (time.dt.epoch("s") + _EPOCH_SHIFT) * CODES + event.cast(pl.Int64)


def packed_codes(events: pl.Expr) -> pl.Expr:
    """List of packed events -> list of UInt16 event codes."""
    return events.list.eval((pl.element() % CODES).cast(pl.UInt16))


def packed_time(value: pl.Expr) -> pl.Expr:
    """A packed event -> its time."""
    return pl.from_epoch(value // CODES - _EPOCH_SHIFT, time_unit="s").cast(TIME)


class OpenSessions:
    """The open sessions, kept as generations: the sessions a piece touched form a new generation, and their rows
    in older generations are only marked dead. Most open sessions sit idle for hours, so a piece costs what it
    touches plus a cheap pass over the key and time columns, never a copy of every session's events. Rows of a
    generation are in order of their last line and generations oldest first, so eviction takes from the front.
    A generation mostly dead is compacted, and neighbours are merged when there are more than ``MAX_GENERATIONS``.
    """

    MAX_GENERATIONS = 12

    def __init__(self, end_codes: list[int]) -> None:
        self.end_codes = end_codes
        self._gens: list[pl.DataFrame] = []  # SCHEMA + "alive"
        self._alive: list[int] = []

    @property
    def height(self) -> int:
        return sum(self._alive)

    @property
    def table(self) -> pl.DataFrame:
        """All open sessions, least recently active first."""
        alive = [g.filter("alive").drop("alive") for g in self._gens]
        return pl.concat(alive) if alive else empty()

    def estimated_size(self) -> int:
        """Bytes held, dead rows awaiting compaction included."""
        return int(sum(g.estimated_size() for g in self._gens))

    def add(self, rows: pl.DataFrame) -> None:
        """Merge rows (session_id, event, time, seq, optionally end_at: when the session is over) given in line
        order."""
        if rows.height == 0:
            return
        time, event = pl.col("time"), pl.col("event")
        in_order = rows["time"].is_sorted()
        ends = time.filter(event.is_in(self.end_codes)).min() if self.end_codes else pl.lit(None, TIME)
        if "end_at" in rows.columns:  # time or line windows: over at their end (serving.format_events)
            ends = pl.min_horizontal(ends, pl.col("end_at").min())
        part = rows.group_by("session_id").agg(
            events=pack(time, event),
            first_seq=pl.col("seq").first(),
            last_seq=pl.col("seq").last(),
            min_time=time.min(),
            max_time=time.max(),
            end_time=ends,
            unsorted=pl.lit(False) if in_order else (time.diff() < 0).any(),
        )
        touched = pl.col("alive") & pl.col("session_id").is_in(part["session_id"].implode())
        old = self._take(lambda g: g.select(touched).to_series())  # they move to the new generation
        hit = part.join(old, on="session_id", how="left", suffix="_old")
        merged = hit.select(
            "session_id",
            events=pl.concat_list(pl.col("events_old").fill_null(_NO_EVENTS), "events"),
            first_seq=pl.coalesce("first_seq_old", "first_seq"),
            last_seq="last_seq",
            max_time=pl.max_horizontal("max_time_old", "max_time"),
            end_time=pl.min_horizontal("end_time_old", "end_time"),
            unsorted=pl.col("unsorted_old").fill_null(False)
            | pl.col("unsorted")
            | (pl.col("min_time") < pl.col("max_time_old")).fill_null(False),
        ).sort("last_seq")
        self._gens.append(merged.with_columns(alive=pl.lit(True)))
        self._alive.append(merged.height)
        self._compact()

    def close(self, clock: datetime, log_now: datetime, idle: float, grace: float) -> pl.DataFrame:
        """Take out the sessions that are over at ``clock`` (log time, extended by wall time when the log is
        quiet): an end event at least ``grace`` s ago (``end``), or no line for ``idle`` s by log time
        (``idle``) or only by the extended clock (``quiet``). Returns them with a ``closed`` column."""
        reason = (
            pl.when(~pl.col("alive"))
            .then(pl.lit(None, pl.String))
            .when(pl.col("end_time") <= clock - timedelta(seconds=grace))
            .then(pl.lit(END))
            .when(pl.col("max_time") < log_now - timedelta(seconds=idle))
            .then(pl.lit(IDLE))
            .when(pl.col("max_time") < clock - timedelta(seconds=idle))
            .then(pl.lit(QUIET))
        )
        return self._take(lambda g: g.select(reason.alias("closed")).to_series(), with_reason=True)

    def evict(self, max_open: int) -> pl.DataFrame:
        """Take out the least recently active sessions beyond ``max_open`` (``closed`` = ``evicted``)."""
        left = self.height - max_open
        if left <= 0:
            return _none_closed()

        def oldest(g: pl.DataFrame) -> pl.Series:
            nonlocal left
            take = pl.col("alive") & (pl.col("alive").cum_sum() <= left)
            reason = g.select(pl.when(take).then(pl.lit(EVICTED)).alias("closed")).to_series()
            left -= reason.len() - reason.null_count()
            return reason

        return self._take(oldest, with_reason=True)

    def take_all(self, reason: str) -> pl.DataFrame:
        out = self.table.with_columns(closed=pl.lit(reason))
        self._gens, self._alive = [], []
        return out

    def _take(self, select: Callable[[pl.DataFrame], pl.Series], with_reason: bool = False) -> pl.DataFrame:
        """The rows of every generation that ``select`` picks (true, or a reason: the ``closed`` column), which
        are marked dead where they were."""
        out = []
        for i, g in enumerate(self._gens):
            chosen = select(g)
            mask = chosen.is_not_null() if with_reason else chosen
            if mask.any():
                rows = g.filter(mask).drop("alive")
                out.append(rows.with_columns(closed=chosen.filter(mask)) if with_reason else rows)
                alive = g["alive"] & ~mask
                self._gens[i], self._alive[i] = g.with_columns(alive=alive), int(alive.sum())
        self._compact()
        return pl.concat(out) if out else _none_closed() if with_reason else empty()

    def _compact(self) -> None:
        """Drop empty generations, squeeze mostly dead ones, merge neighbours when there are too many."""
        keep = [(g, n) for g, n in zip(self._gens, self._alive, strict=True) if n]
        keep = [(g.filter("alive") if n < g.height // 2 else g, n) for g, n in keep]
        while len(keep) > self.MAX_GENERATIONS:
            j = min(range(len(keep) - 1), key=lambda k: keep[k][1] + keep[k + 1][1])
            (a, na), (b, nb) = keep[j], keep[j + 1]
            keep[j : j + 2] = [(pl.concat([a.filter("alive"), b.filter("alive")]), na + nb)]
        self._gens, self._alive = [g for g, _ in keep], [n for _, n in keep]

    def to_ipc(self) -> bytes:
        buf = io.BytesIO()
        self.table.write_ipc(buf, compression="lz4")
        return buf.getvalue()

    def load_ipc(self, data: bytes) -> None:
        try:
            table = pl.read_ipc(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - polars raises several kinds on damaged bytes
            raise LogsieveError(f"state file: open sessions are damaged ({type(exc).__name__})") from None
        if dict(table.schema) != SCHEMA:
            raise LogsieveError("state file: open sessions have an unexpected layout (written by another version?)")
        table = table.sort("last_seq")
        self._gens, self._alive = [table.with_columns(alive=pl.lit(True))], [table.height]
        self._compact()


def in_time_order(closed: pl.DataFrame) -> pl.DataFrame:
    """Closed sessions in order of their first line, each one's events stably re-sorted by time if needed."""
    closed = closed.sort("first_seq")
    if not closed["unsorted"].any():
        return closed
    fixed = (
        closed.with_row_index("_row")
        .filter("unsorted")
        .select("_row", "events")
        .explode("events")
        .sort("_row", pl.col("events") // CODES, maintain_order=True)
        .group_by("_row", maintain_order=True)
        .agg("events")
    )
    return closed.with_row_index("_row").update(fixed, on="_row").drop("_row")
