"""Raw HDFS logs -> the session table: read, match templates, sessionize, join labels.

Chunks of whole lines go to worker threads (one per core; polars releases the GIL in its kernels), which
check, match and group their lines into partial sessions; the calling thread numbers lines, folds reject
counts and merges the partials in input order. A mined vocabulary has to grow in line order, so in mining
mode the workers only prepare contents and the calling thread mines while they read ahead.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from logsieve.artifacts import available_cpus
from logsieve.errors import DataError, LogsieveError
from logsieve.parsing.lines import (
    CHUNK_BYTES,
    Chunk,
    RejectStats,
    expand_paths,
    iter_chunks,
    split_lines,
)
from logsieve.parsing.sessionize import (
    add_labels,
    group_lines,
    merge_groups,
    with_block_ids,
)
from logsieve.parsing.templates import HDFS, TemplateMatcher

if TYPE_CHECKING:
    from logsieve.parsing.mining import TemplateMiner

MINE = "mine"
NO_TEMPLATE = "no_template"


FILES_SCHEMA = {"source": pl.String, "offset": pl.Int64, "lines": pl.Int64}


@dataclass
class ParseResult:
    """``sessions[line_numbers]`` count lines across all inputs in order (1-based); ``files`` turns them back
    into (file, line within the file): input file i holds global lines ``offset + 1 .. offset + lines``."""

    sessions: pl.DataFrame
    stats: RejectStats
    miner: TemplateMiner | None = None  # the fitted miner in mining mode (save it to reuse its ids)
    files: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=FILES_SCHEMA))


def parse_logs(
    paths: list[Path], labels: str | Path | None = None, templates: str = HDFS, rejects: Path | None = None
) -> pl.DataFrame:
    """The session table of raw HDFS logs (files, .gz, directories, ``-`` for stdin); see ``parse_logs_report``."""
    return parse_logs_report(paths, labels=labels, templates=templates, rejects=rejects).sessions


def parse_logs_report(
    paths: Iterable[str | Path],
    labels: str | Path | None = None,
    templates: str | Path | TemplateMiner = HDFS,
    rejects: str | Path | None = None,
    n_jobs: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> ParseResult:
    """Sessions plus reject statistics (and the miner when mining).

    ``templates``: ``"hdfs"`` (the shipped E1..E30, first-match rule), ``"mine"`` (learn templates with the
    Drain-style ``TemplateMiner``), or the path of a saved miner JSON or a ``TemplateMiner`` (its ids, no further
    learning; lines it does not know become ``M0``).
    ``rejects``: where to write rejected lines as CSV (source, line, reason, text).
    """
    paths = list(paths)
    if not paths:
        raise DataError("(inputs)", "no log files given")
    label_table = None
    if labels is not None:
        from logsieve.table import load_label_table

        label_table = load_label_table(labels)  # fail on a bad label file before the long part
    miner, fit = _miner_for(templates)
    stats = RejectStats(keep=rejects is not None)
    matcher = TemplateMatcher()
    work = partial(_known_chunk, matcher) if miner is None else content_lines
    sources = expand_paths(paths)
    order: deque[int] = deque()  # input-file index of each chunk handed out, in order
    parts: list[pl.DataFrame] = []
    offset, file_lines = 0, Counter[int]()
    for chunk, (part, chunk_stats) in _ordered_map(work, _indexed_chunks(sources, chunk_bytes, order), n_jobs):
        i = order.popleft()
        if miner is not None:
            part = _mine(miner, fit, part)
        parts.append(part.with_columns(pl.col("line_numbers") + (offset + 1)))
        stats.merge(chunk_stats, chunk.source, file_lines[i])
        offset += chunk_stats.lines
        file_lines[i] += chunk_stats.lines
    lines = pl.Series([file_lines[i] for i in range(len(sources))], dtype=pl.Int64)
    files = pl.DataFrame({"source": sources, "offset": lines.cum_sum() - lines, "lines": lines}, schema=FILES_SCHEMA)
    if rejects is not None:
        stats.write(rejects)
    if not any(p.height for p in parts):
        raise DataError(", ".join(map(str, paths)), f"no block sessions found ({stats.summary()})")
    sessions = add_labels(merge_groups(parts), label_table)
    return ParseResult(sessions, stats, miner, files)


def _indexed_chunks(sources: list[str], chunk_bytes: int, order: deque[int]) -> Iterator[Chunk]:
    """The chunks of every input in order, noting each one's file index in ``order`` as it is handed out
    (the same path given twice is two inputs with their own line numbers)."""
    for i, src in enumerate(sources):
        for chunk in iter_chunks([src], chunk_bytes):
            order.append(i)
            yield chunk


def locate_sessions(sessions: pl.DataFrame, files: pl.DataFrame) -> pl.DataFrame:
    """Add ``source`` (the input file of a session's first line in time order) and ``first_line``/``last_line``
    (the lowest and highest of the session's line numbers within that file, counted from 1 in the file), from
    the global ``line_numbers`` and the ``files`` table of ``ParseResult``. Null where line numbers are missing."""
    if "line_numbers" not in sessions.columns or files.height == 0:
        return sessions.with_columns(
            source=pl.lit(None, pl.String), first_line=pl.lit(None, pl.Int64), last_line=pl.lit(None, pl.Int64)
        )
    starts = files["offset"]  # non-decreasing: inputs are numbered in order; an empty file shares the next offset
    index = starts.search_sorted(sessions["line_numbers"].list.first(), side="left").cast(pl.Int64) - 1
    lo = starts.gather(index)
    if (files["lines"] > 0).sum() <= 1:  # one file with lines: every line of every session is in it
        numbers = sessions["line_numbers"]
        first, last = numbers.list.min() - lo, numbers.list.max() - lo
    else:
        hi = lo + files["lines"].gather(index)
        rows = pl.DataFrame({"lo": lo, "hi": hi, "n": sessions["line_numbers"]}).with_row_index("row").explode("n")
        local = (
            rows.filter((pl.col("n") > pl.col("lo")) & (pl.col("n") <= pl.col("hi")))
            .group_by("row")
            .agg(first=(pl.col("n") - pl.col("lo")).min(), last=(pl.col("n") - pl.col("lo")).max())
        )
        span = pl.DataFrame({"row": pl.int_range(sessions.height, eager=True, dtype=pl.UInt32)}).join(
            local, on="row", how="left", maintain_order="left"
        )
        first, last = span["first"], span["last"]
    return sessions.with_columns(
        source=files["source"].gather(index), first_line=first.cast(pl.Int64), last_line=last.cast(pl.Int64)
    )


def _miner_for(templates: str | Path | TemplateMiner) -> tuple[TemplateMiner | None, bool]:
    """(miner or None, learn?) for the ``templates`` option."""
    if not isinstance(templates, (str, Path)):  # a miner built by the caller (a bundle's): its ids, no learning
        return templates, False
    if str(templates) == HDFS:
        return None, False
    try:
        from logsieve.parsing.mining import TemplateMiner
    except ImportError as exc:  # pragma: no cover - mining.py ships with the package
        raise LogsieveError(f"template mining is unavailable ({exc})") from None
    if str(templates) == MINE:
        return TemplateMiner(), True
    path = Path(templates)
    if not path.is_file():
        raise DataError(path, f"--templates must be {HDFS!r}, {MINE!r} or a saved miner JSON file; file not found")
    return TemplateMiner.load(path), False


def _known_chunk(matcher: TemplateMatcher, chunk: Chunk) -> tuple[pl.DataFrame, RejectStats]:
    """Worker: one chunk -> partial sessions of its lines that have a template and a block (line numbers from 0)."""
    lines, stats = known_lines(matcher, chunk)
    return group_lines(lines), stats


def known_lines(matcher: TemplateMatcher, chunk: Chunk) -> tuple[pl.DataFrame, RejectStats]:
    """One chunk -> (blocks, timestamp, line_number (from 0), event) of its lines with a template and a block; a
    function of its own so that the Ray backend (``distributed.py``) runs exactly this per-line parse."""
    good, stats = split_lines(chunk.read(), chunk.source, chunk.error, masked=True)
    good = with_block_ids(good.with_columns(event=matcher.codes(good["masked"])))
    for n, text in good.filter(pl.col("event").is_null()).select("n", "line").iter_rows():
        stats.add(chunk.source, n + 1, NO_TEMPLATE, text)
    good = _drop_unblocked(good.filter(pl.col("event").is_not_null()), stats)
    return good.select("blocks", "timestamp", line_number="n", event=matcher.decode(good["event"])), stats


def content_lines(chunk: Chunk) -> tuple[pl.DataFrame, RejectStats]:
    """Worker: one chunk -> (blocks, timestamp, line_number, content) of lines with a block; mining comes later."""
    good, stats = split_lines(chunk.read(), chunk.source, chunk.error)
    line = pl.col("line")  # the header check guarantees the first ": " ends the component
    good = _drop_unblocked(with_block_ids(good), stats)
    return good.select(
        "blocks", "timestamp", line_number="n", content=line.str.slice(line.str.find(": ", literal=True) + 2)
    ), stats


def _mine(miner: TemplateMiner, fit: bool, lines: pl.DataFrame) -> pl.DataFrame:
    """Caller thread, in line order: template ids for a chunk's contents, then its partial sessions."""
    return group_lines(mined_lines(miner, fit, lines))


def mined_lines(miner: TemplateMiner, fit: bool, lines: pl.DataFrame) -> pl.DataFrame:
    """``content_lines`` output -> the same lines with ``event`` (template id) instead of ``content``."""
    if lines.height:
        contents = lines["content"]
        events = miner.fit_transform(contents) if fit else miner.transform(contents)
        lines = lines.with_columns(event=events.cast(pl.String))
    else:
        lines = lines.with_columns(event=pl.lit(None, pl.String))
    return lines.drop("content")


def _drop_unblocked(lines: pl.DataFrame, stats: RejectStats) -> pl.DataFrame:
    """Drop (but count) lines that name no block: they belong to no session."""
    has = lines["blocks"].list.len() > 0
    stats.unblocked += int((~has).sum())
    return lines.filter(has)


def _ordered_map(
    fn: Callable[[Chunk], tuple], chunks: Iterator[Chunk], n_jobs: int | None
) -> Iterator[tuple[Chunk, tuple]]:
    """(chunk, fn(chunk)) in input order, ``n_jobs`` chunks at a time, with a bounded number in flight so a big
    .gz or stdin is never held in memory whole. Threads suffice: polars releases the GIL in its kernels."""
    if not n_jobs:
        n_jobs = available_cpus()
    if n_jobs == 1:
        yield from ((chunk, fn(chunk)) for chunk in chunks)
        return
    pending: deque[tuple[Chunk, Future]] = deque()
    with ThreadPoolExecutor(n_jobs) as pool:
        for chunk in chunks:
            pending.append((chunk, pool.submit(fn, chunk)))
            while len(pending) > n_jobs or (pending and pending[0][1].done()):
                done, fut = pending.popleft()
                yield done, fut.result()
        while pending:
            done, fut = pending.popleft()
            yield done, fut.result()
