"""Raw HDFS logs -> the session table: read, match templates, sessionize, join labels.

Chunks of whole lines are handled by worker processes (one per core) that return a compact table of
(line, time, event, blocks); the parent numbers lines, folds reject counts, and sessionizes. Known-template
matching happens in the workers; a mined vocabulary has to grow in line order, so mining runs in the parent.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import chain, islice
from multiprocessing import get_context
from pathlib import Path

import polars as pl

from logsieve.data.logs import CHUNK_BYTES, Chunk, RejectStats, iter_chunks, split_lines
from logsieve.data.sessionize import sessionize, with_block_ids
from logsieve.data.templates import HDFS, TemplateMatcher
from logsieve.errors import DataError, LogsieveError

MINE = "mine"
NO_TEMPLATE = "no_template"
_matcher: TemplateMatcher | None = None  # one per worker process; its skeleton cache lives across chunks


@dataclass
class ParseResult:
    sessions: pl.DataFrame
    stats: RejectStats
    miner: object | None = None  # the fitted TemplateMiner in mining mode


def parse_logs(
    paths: list[Path], labels: Path | None = None, templates: str = HDFS, rejects: Path | None = None
) -> pl.DataFrame:
    """The session table of raw HDFS logs (files, .gz, directories, ``-`` for stdin); see ``parse_logs_report``."""
    return parse_logs_report(paths, labels=labels, templates=templates, rejects=rejects).sessions


def parse_logs_report(
    paths: Iterable[str | Path],
    labels: str | Path | None = None,
    templates: str | Path = HDFS,
    rejects: str | Path | None = None,
    n_jobs: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> ParseResult:
    """Sessions plus reject statistics (and the miner when mining).

    ``templates``: ``"hdfs"`` (the shipped E1..E30, first-match rule), ``"mine"`` (learn templates with the
    Drain-style ``TemplateMiner``), or the path of a saved miner JSON (its ids, no further learning).
    ``rejects``: where to write rejected lines as CSV (source, line, reason, text).
    """
    paths = list(paths)
    if not paths:
        raise DataError("(inputs)", "no log files given")
    label_table = None
    if labels is not None:
        from logsieve.data.sessions import load_label_table

        label_table = load_label_table(labels)  # fail on a bad label file before the long part
    miner, fit = _miner_for(templates)
    stats = RejectStats(keep=rejects is not None)
    work = _known_chunk if miner is None else _content_chunk
    frames, offset, file_lines = [], 0, Counter()
    for chunk, (frame, chunk_stats) in _ordered_map(work, iter_chunks(paths, chunk_bytes), n_jobs):
        if miner is not None and frame.height:
            contents = frame["content"]
            events = miner.fit_transform(contents) if fit else miner.transform(contents)
            frame = frame.drop("content").with_columns(event=events.cast(pl.String))
        frames.append(frame.with_columns(line_number=pl.col("n").cast(pl.Int64) + (offset + 1)).drop("n"))
        stats.merge(chunk_stats, chunk.source, file_lines[chunk.source])
        offset += chunk_stats.lines
        file_lines[chunk.source] += chunk_stats.lines
    if rejects is not None:
        stats.write(rejects)
    lines = pl.concat(frames) if frames else pl.DataFrame()
    if lines.height == 0:
        raise DataError(", ".join(map(str, paths)), f"no block sessions found ({stats.summary()})")
    if miner is None:
        lines = lines.with_columns(event=TemplateMatcher().decode(lines["event"]))
    sessions = sessionize(lines, label_table)
    return ParseResult(sessions, stats, miner)


def _miner_for(templates: str | Path):
    """(miner or None, learn?) for the ``templates`` option."""
    if str(templates) == HDFS:
        return None, False
    try:
        from logsieve.data.mining import TemplateMiner
    except ImportError as exc:  # pragma: no cover - mining.py ships with the package
        raise LogsieveError(f"template mining is unavailable ({exc})") from None
    if str(templates) == MINE:
        return TemplateMiner(), True
    path = Path(templates)
    if not path.is_file():
        raise DataError(path, f"--templates must be {HDFS!r}, {MINE!r} or a saved miner JSON file; file not found")
    return TemplateMiner.load(path), False


def _known_chunk(chunk: Chunk) -> tuple[pl.DataFrame, RejectStats]:
    """Worker: one chunk -> (n, timestamp, event code, blocks) of lines that have a template and a block."""
    global _matcher
    if _matcher is None:
        _matcher = TemplateMatcher()
    good, stats = split_lines(chunk.read(), chunk.source, chunk.error, masked=True)
    good = with_block_ids(good.with_columns(event=_matcher.codes(good["masked"])))
    for n, text in good.filter(pl.col("event").is_null()).select("n", "line").iter_rows():
        stats.add(chunk.source, n + 1, NO_TEMPLATE, text)
    good = good.filter(pl.col("event").is_not_null())
    return _with_blocks(good.select("n", "timestamp", "event", "blocks"), stats)


def _content_chunk(chunk: Chunk) -> tuple[pl.DataFrame, RejectStats]:
    """Worker: one chunk -> (n, timestamp, content, blocks); the parent mines templates from ``content``."""
    good, stats = split_lines(chunk.read(), chunk.source, chunk.error)
    line = pl.col("line")  # the header check guarantees the first ": " ends the component
    good = with_block_ids(good).select(
        "n", "timestamp", "blocks", content=line.str.slice(line.str.find(": ", literal=True) + 2)
    )
    return _with_blocks(good, stats)


def _with_blocks(frame: pl.DataFrame, stats: RejectStats) -> tuple[pl.DataFrame, RejectStats]:
    """Drop (but count) lines that name no block: they belong to no session."""
    has = frame["blocks"].list.len() > 0
    stats.unblocked += int((~has).sum())
    return frame.filter(has), stats


def _ordered_map(
    fn: Callable[[Chunk], tuple], chunks: Iterator[Chunk], n_jobs: int | None
) -> Iterator[tuple[Chunk, tuple]]:
    """(chunk, fn(chunk)) in input order; worker processes when there is more than one chunk, with a bounded
    number of chunks in flight so a big .gz or stdin is never held in memory whole."""
    n_jobs = n_jobs or os.cpu_count() or 1
    head = list(islice(chunks, 2))
    if n_jobs == 1 or len(head) < 2:
        for chunk in chain(head, chunks):
            yield chunk, fn(chunk)
        return
    pending: list[tuple[Chunk, Future]] = []
    started = False
    try:
        with ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn")) as pool:
            for chunk in chain(head, chunks):
                pending.append((chunk, pool.submit(fn, chunk)))
                while len(pending) > 2 * n_jobs or (pending and pending[0][1].done()):
                    result = pending[0][1].result()
                    started = True
                    yield pending.pop(0)[0], result
            while pending:
                result = pending[0][1].result()
                yield pending.pop(0)[0], result
    except BrokenProcessPool:
        if started:
            raise
        # workers could not start (e.g. a script without `if __name__ == "__main__":`): work here instead
        for chunk in chain((c for c, _ in pending), chunks):
            yield chunk, fn(chunk)
