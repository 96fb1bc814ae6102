"""``logsieve watch``: follow growing HDFS logs like ``tail -F`` and write a JSON line per alert as sessions close.

Lines are read in pieces (``tail``), parsed a piece at a time in worker threads with the bundle's templates
(``events``), merged into the open block sessions (``open_sessions``) and, once a session is over, scored in a
batch with ``score_table``. A session is over when an event that ends a block (default: the NameNode's delete,
E23/E30) is ``--end-grace`` old, or when it had no line for ``--idle``, both by LOG time (the newest time seen
in the log), so replaying an old log behaves like following a live one; when the log goes quiet the clock goes
on with WALL time. ``--max-open`` bounds memory by evicting the least recently active sessions; Ctrl-C/SIGTERM
and the end of ``--once`` input flush what is open; all three are scored and marked ``"partial": true``.
``--state`` makes it restartable after ``kill -9`` (see ``checkpoint`` for the guarantee). A bundle of another
log format reads lines with ``format_events``: keyed sessions close by ``--idle``, a time window once log time
passes its end plus ``--end-grace``, a window of N lines when it is full.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from logsieve.config import validation_summary
from logsieve.errors import DataError, LogsieveError
from logsieve.parsing.lines import STDIN, RejectStats
from logsieve.serving.alerts import AlertWriter, alert_lines
from logsieve.serving.bundle import Bundle
from logsieve.serving.checkpoint import read_state, write_state, written_since
from logsieve.serving.format_events import event_source
from logsieve.serving.open_sessions import (
    EOF,
    EVICTED,
    PARTIAL,
    SHUTDOWN,
    OpenSessions,
    in_time_order,
    packed_codes,
    packed_time,
)
from logsieve.serving.scoring import ALERT, score_table
from logsieve.serving.tail import READ_BYTES, FileFollower, Follower, Piece, Position, StdinFollower


class WatchOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    idle: float = Field(24 * 3600.0, gt=0)  # s; in Loghub's HDFS sample a block is quiet for up to 12.9 h
    end_events: tuple[str, ...] | None = None  # None: DEFAULT_END_EVENTS; (): only idle time closes
    end_grace: float = Field(1800.0, ge=0)  # s after an end event; the sample's last line comes <= 27 min later
    max_open: int = Field(500_000, ge=1)  # ~0.3 KB each; HDFS_v1 peaks at ~145 k open blocks
    all_sessions: bool = False  # write normal sessions too
    explain: bool = False
    checkpoint: float = Field(5.0, gt=0)  # s of wall time between state writes
    poll: float = Field(0.25, gt=0)  # s to sleep when no input has new lines
    once: bool = False  # stop at the end of the inputs (like cat), instead of following them
    from_end: bool = False  # start files at their end (like tail -n 0 -F); a state file overrides it
    keep_open: bool = False  # with a state file: keep open sessions for the next run instead of flushing them
    read_bytes: int = Field(READ_BYTES, ge=1 << 17)  # > MAX_LINE_BYTES: a whole line always fits
    threads: int = Field(default_factory=lambda: max(1, min(4, (os.cpu_count() or 2) - 1)), ge=1)  # parse workers


@dataclass
class Summary:
    lines: int
    rejected: int
    unblocked: int
    scored: int
    anomalies: int
    written: int
    evicted: int
    partial: int
    still_open: int
    rotations: int
    truncations: int
    seconds: float

    def line(self) -> str:
        rate = self.lines / max(self.seconds, 1e-9)
        return (f"{self.lines:,} lines ({self.rejected:,} rejected, {self.unblocked:,} name no block) in "
                f"{self.seconds:.1f} s ({rate:,.0f} lines/s); {self.scored:,} sessions scored, {self.anomalies:,} "
                f"anomalous, {self.written:,} written; {self.evicted:,} evicted by --max-open; {self.partial:,} "
                f"partial; {self.still_open:,} kept open; {self.rotations} rotations, "
                f"{self.truncations} truncations")  # fmt: skip


def make_options(**values: Any) -> WatchOptions:
    """WatchOptions from user input: a bad value is one LogsieveError line."""
    try:
        return WatchOptions(**values)
    except ValidationError as exc:
        raise LogsieveError(f"watch options: {validation_summary(exc)}") from None


def parse_duration(text: str | float, option: str = "duration") -> float:
    """'90', '90s', '10m', '4h', '1d' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smhd]?)\s*", str(text))
    if not m:
        raise LogsieveError(f"{option}: {text!r} is not a duration (e.g. 90s, 10m, 4h)")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]


class Watcher:
    """Follow ``inputs`` with ``bundle``; ``run`` until stopped, or drive it with ``step`` (tests)."""

    def __init__(self, bundle: Bundle, inputs: Sequence[str], options: WatchOptions | None = None,
                 out: str | Path | None = None, state: str | Path | None = None,
                 say: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.bundle, self.options = bundle, options or WatchOptions()
        self.say = say or (lambda msg: print(f"watch: {msg}", file=sys.stderr, flush=True))
        self.events = event_source(bundle)  # HDFS blk_ sessions, or any format as the bundle's parse spec says
        self.grace = 0.0 if self.events.closes_when_full else self.options.end_grace  # time windows wait it too
        self.good = 0  # lines with a template over all runs: windows of N lines count them
        self.sessions = OpenSessions(self.events.end_codes(self.options.end_events))
        self.stats = RejectStats()
        self.counts: Counter[str] = Counter()
        self.seq = 0  # lines read over all runs: a session's line order across pieces
        self.log_now: datetime | None = None
        self.skip: Counter[str] = Counter()  # written after the last checkpoint of a crashed run
        self.out_path = Path(out).resolve() if out is not None else None
        self.state_path = Path(state) if state is not None else None
        positions = self._restore() if self.state_path is not None else {}
        self.followers = self._followers(inputs, positions)
        self.writer = AlertWriter(self.out_path)
        self._pool = ThreadPoolExecutor(self.options.threads, thread_name_prefix="logsieve-watch")
        self._pending: deque[tuple[Piece, Future]] = deque()
        self._stop = threading.Event()
        self._wall_line = self._wall_saved = time.monotonic()
        self._started = time.perf_counter()

    # --- set-up -------------------------------------------------------------------------------------------
    def _followers(self, inputs: Sequence[str], positions: dict[str, Position]) -> list[Follower]:
        if not inputs:
            raise DataError("(inputs)", "no log files given")
        paths = [p if p == STDIN else os.path.abspath(p) for p in inputs]
        if len(set(paths)) < len(paths):
            raise LogsieveError("an input is given twice")
        out: list[Follower] = []
        for p in paths:
            if p == STDIN:
                out.append(StdinFollower())
                continue
            if os.path.isdir(p):
                raise DataError(p, "is a directory; watch follows files")
            if not os.path.exists(p):
                if self.options.once:
                    raise DataError(p, "file not found")
                self.say(f"{p}: not there yet; waiting for it to appear")
            out.append(FileFollower(p, positions.get(p), self.options.from_end, self.say))
        return out

    def _restore(self) -> dict[str, Position]:
        assert self.state_path is not None
        loaded = read_state(self.state_path)
        if loaded is None:
            return {}
        meta, sessions = loaded
        if meta.get("names") != self.events.names:
            raise LogsieveError(f"{self.state_path}: written with other event templates than this model's; "
                                "use the same model or move the state file away")  # fmt: skip
        try:
            self.sessions.load_ipc(sessions)
            self.seq = int(meta["seq"])
            self.good = int(meta.get("good", 0))
            self.log_now = datetime.fromisoformat(meta["log_now"]) if meta.get("log_now") else None
            self.skip = Counter({str(k): int(v) for k, v in meta.get("skip", {}).items()})
            positions = {p: Position.from_dict(d) for p, d in meta["inputs"].items()}
        except (KeyError, TypeError, ValueError):
            raise LogsieveError(f"{self.state_path}: watch state is damaged; move it away to start over") from None
        out = meta.get("out")
        if out and self.out_path is not None and out.get("path") == str(self.out_path):
            self.skip += written_since(self.out_path, int(out["offset"]))
        self.say(f"resumed from {self.state_path}: {self.sessions.height:,} open sessions"
                 + (f", {sum(self.skip.values()):,} already written" if self.skip else ""))  # fmt: skip
        return positions

    # --- the loop -----------------------------------------------------------------------------------------
    def run(self) -> Summary:
        """Follow until Ctrl-C/SIGTERM (or the end of the input with ``once`` or stdin), then flush and stop."""
        old = self._trap_signals()
        try:
            while not self._stop.is_set() and not self.writer.broken:
                if not self.step():
                    if self._inputs_done():
                        break
                    self.tick()
                    self._stop.wait(self.options.poll)
                if time.monotonic() - self._wall_saved >= self.options.checkpoint:
                    self.checkpoint()
            return self.finish()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def step(self) -> bool:
        """Read what the inputs hold (a few pieces parsed ahead), merge the oldest piece, close and write what
        is over. False when there was nothing to do."""
        got = self._fill()
        if self._pending:
            self._merge(*self._pending.popleft())
            return True
        return got

    def drain(self) -> None:
        """Step until every input is read up to its current end (tests)."""
        while self.step():
            pass

    def _fill(self) -> bool:
        got, progress, ahead = False, True, self.options.threads + 1  # one more than workers: none waits
        while progress and len(self._pending) < ahead:
            progress = False
            for f in self.followers:
                if len(self._pending) >= ahead:
                    break
                piece = f.poll(self.options.read_bytes)
                if piece is not None:
                    self._pending.append((piece, self._pool.submit(self.events.parse, piece.data, piece.source)))
                    progress = got = True
        return got

    def _merge(self, piece: Piece, parsed: Future) -> None:
        rows, stats = parsed.result()
        self.stats.merge(stats, piece.source, 0)
        if stats.lines:
            self._wall_line = time.monotonic()
        rows, used = self.events.number(rows, self.good)
        self.good += used
        if rows.height:
            newest = cast(datetime, rows["time"].max())
            self.log_now = newest if self.log_now is None else max(self.log_now, newest)
            self.sessions.add(rows.with_columns(seq=pl.col("n") + self.seq).drop("n"))
        self.seq += stats.lines
        piece.follower.commit(piece.position)
        self._close(quiet=False)

    def _inputs_done(self) -> bool:
        """``once``: every input read to its end; stdin alone: it ended."""
        if self._pending:
            return False
        if self.options.once:
            return all(f.at_end() for f in self.followers)
        return all(isinstance(f, StdinFollower) and f.at_end() for f in self.followers)

    def tick(self) -> None:
        """The inputs had nothing new: close what is over by the log clock extended with wall time."""
        self._close(quiet=True)

    def _close(self, quiet: bool) -> None:
        """Score and write the sessions that are over; ``quiet``: the inputs had nothing new, so wall time since
        the last line extends the log clock."""
        if self.log_now is not None and self.sessions.height:
            extra = time.monotonic() - self._wall_line if quiet else 0.0
            clock = self.log_now + timedelta(seconds=max(0.0, extra))
            done = self.sessions.close(clock, self.log_now, self.options.idle, self.grace)
            self._emit(done)
            if quiet and done.height and self.state_path is not None:
                self.checkpoint()  # closing by wall time does not replay the same way: record it at once
        evicted = self.sessions.evict(self.options.max_open)
        if evicted.height:
            if not self.counts[EVICTED]:
                self.say(f"--max-open {self.options.max_open:,} reached: evicting the least recently active "
                         "sessions (scored as partial); raise --max-open or lower --idle")  # fmt: skip
            self._emit(evicted)

    # --- scoring and writing ----------------------------------------------------------------------------------
    def _emit(self, closed: pl.DataFrame) -> None:
        """Score closed sessions in one batch; write the alerts (anomaly verdicts and sessions holding events
        never seen in training, as ``score --only-alerts`` keeps them) and every evicted session, or every
        session with ``all_sessions``."""
        if closed.height == 0:
            return
        closed = in_time_order(closed)
        codes = closed.select(packed_codes(pl.col("events"))).to_series()
        table = closed.select(
            "session_id",
            events=self.events.decode(codes),
            start_time=packed_time(pl.col("events").list.min()),
            end_time="max_time",
        )
        result = score_table(self.bundle, table).with_columns(
            closed=closed["closed"], partial=closed["closed"].is_in(PARTIAL)
        )
        alert = result.select(ALERT).to_series()
        self.counts["scored"] += result.height
        self.counts["anomalies"] += int((result["verdict"] == "anomaly").sum())
        self.counts["partial"] += int(result["partial"].sum())
        self.counts[EVICTED] += int((result["closed"] == EVICTED).sum())
        chosen = result.with_columns(_alert=alert, _events=table["events"])  # (alert_lines drops them)
        if not self.options.all_sessions:  # an eviction is always reported: its verdict saw only part of it
            chosen = chosen.filter(pl.col("_alert") | (pl.col("closed") == EVICTED))
        if self.skip and chosen.height:
            chosen = chosen.filter(pl.Series([not self._skipped(sid) for sid in chosen["session_id"]]))
        if chosen.height:
            self.writer.write(alert_lines(self.bundle, chosen, self.options.explain))
            self.counts["written"] += chosen.height

    def _skipped(self, session_id: str) -> bool:
        """Written before a crash, after the last checkpoint: do not write it again (once per record)."""
        left = self.skip.get(session_id, 0)
        if left <= 0:
            return False
        if left == 1:
            del self.skip[session_id]
        else:
            self.skip[session_id] = left - 1
        return True

    # --- state and exit -------------------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Write the state file (positions, open sessions, output size): see ``checkpoint``'s protocol."""
        self._wall_saved = time.monotonic()
        if self.state_path is None:
            return
        offset = self.writer.sync()
        meta = {
            "inputs": {f.source: f.position.to_dict() for f in self.followers if f.position is not None},
            "seq": self.seq,
            "good": self.good,
            "log_now": self.log_now.isoformat() if self.log_now is not None else None,
            "skip": dict(self.skip),
            "out": {"path": str(self.out_path), "offset": offset} if offset is not None else None,
            "names": self.events.names,
            "model": {"name": self.bundle.name, "kind": self.bundle.kind},
        }
        write_state(self.state_path, meta, self.sessions.to_ipc())

    def finish(self) -> Summary:
        """Merge what is in flight, flush (or, with ``keep_open``, keep) the open sessions, save the state."""
        while self._pending:
            self._merge(*self._pending.popleft())
        ended = self._inputs_done()
        if ended:  # an unfinished last line of a file that ended counts, as in `logsieve parse`
            for f in self.followers:
                if (piece := f.finish()) is not None:
                    self._merge(piece, self._pool.submit(self.events.parse, piece.data, piece.source))
        if self.options.keep_open and self.state_path is not None and not ended:
            self.say(f"{self.sessions.height:,} open sessions kept in {self.state_path} for the next run")
        else:
            self._emit(self.sessions.take_all(EOF if ended else SHUTDOWN))
        self.checkpoint()
        summary = self.summary()
        self.say(summary.line())
        return summary

    def summary(self) -> Summary:
        return Summary(
            lines=self.stats.lines, rejected=self.stats.rejected, unblocked=self.stats.unblocked,
            scored=self.counts["scored"], anomalies=self.counts["anomalies"], written=self.counts["written"],
            evicted=self.counts[EVICTED], partial=self.counts["partial"], still_open=self.sessions.height,
            rotations=sum(f.rotations for f in self.followers), truncations=sum(f.truncations for f in self.followers),
            seconds=time.perf_counter() - self._started,
        )  # fmt: skip

    def _trap_signals(self) -> dict[int, Any]:
        """Ctrl-C and SIGTERM end the loop cleanly (a second one aborts the flush)."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, frame: Any) -> None:
            if self._stop.is_set():
                raise KeyboardInterrupt
            self._stop.set()

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def close(self) -> None:
        """Release files and threads (``run`` does it; without ``finish`` first, this is a crash: tests)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for f in self.followers:
            f.close()
        self.writer.close()
