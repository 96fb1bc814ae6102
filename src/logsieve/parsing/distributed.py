"""``parse --backend ray``: read and template raw logs on a Ray cluster with Ray Data, and group sessions there too.

Why a plan of its own: one machine reads ~1 M HDFS lines/s; beyond that the reading and template matching must
spread over machines, and so must the grouping, or one node would hold every line. Only a FIXED template set can
travel (the shipped HDFS E1..E30 or a saved miner): mining learns in line order, so it stays on one machine, and
so do time and line windows. The output equals the single-machine parse row for row.

1. Tasks: byte ranges of whole lines of plain files; a .gz is one task (a gzip stream cannot be split).
2. ``map_batches``: each task runs the single-machine per-chunk parse (``pipeline.known_lines`` / ``content_lines``
   or ``reader.read_chunk``) and emits one row per (line, session key) plus one row of reject statistics. A task
   cannot know how many lines precede it, so a line is coded (task, line within the task), which sorts like the
   global line number.
3. ``groupby(bucket).map_groups`` (streamed after step 2, one Ray Data pipeline): rows meet by a polars hash of
   their key; each bucket runs ``group_lines`` + ``merge_groups`` (blocks) or ``key_sessions`` (any key).
4. The driver folds the statistics in input order, turns the line codes into global line numbers, sorts the
   sessions into the single-machine order and joins labels.

What runs on the workers (steps 2 and 3) lives in ``distributed_tasks.py``.

On a real cluster every node must read the input files at the same path (a shared file system) and run the same
logsieve and polars versions (buckets are polars hashes; a mismatch is detected as a duplicated session).
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from logsieve.errors import DataError, LogsieveError
from logsieve.parsing.distributed_tasks import (
    TASK_SHIFT,
    BlockLines,
    KeyLines,
    group_blocks,
    group_keys,
    load_stats,
    parse_tasks,
)
from logsieve.parsing.format_pipeline import SessionRule, _check_fit, _line_label, _templates
from logsieve.parsing.formats import LogFormat, resolve_format
from logsieve.parsing.lines import CHUNK_BYTES, MALFORMED, STDIN, RejectStats, expand_paths, is_gzip, iter_chunks
from logsieve.parsing.pipeline import FILES_SCHEMA, MINE, ParseResult, _miner_for
from logsieve.parsing.sessionize import add_labels

if TYPE_CHECKING:
    from logsieve.parsing.mining import TemplateMiner

BUCKETS_PER_CPU = 4  # grouping buckets: enough to balance the cluster, few enough that each is one polars group_by
NO_RAY = "--backend ray needs the ray extra: pip install 'logsieve[ray]'"
NO_MINING = (
    "--backend ray needs a fixed template set (hdfs or a saved miner JSON): mining learns in line order on one "
    "machine; run parse --templates mine --save-miner M.json once, then --backend ray --templates M.json"
)
NO_WINDOWS = (
    "--backend ray groups sessions by an id (HDFS blocks or --session-key); --window/--lines sessions are built "
    "on one machine: use --backend local"
)
NO_STDIN = "--backend ray reads files every node can open; save stdin (-) to a shared file first"


def parse_logs_ray(
    paths: Iterable[str | Path],
    labels: str | Path | None = None,
    templates: str | Path | TemplateMiner = "hdfs",
    rejects: str | Path | None = None,
    address: str | None = None,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> ParseResult:
    """``pipeline.parse_logs_report`` (HDFS, block sessions) on Ray: the same sessions, statistics and files.

    ``address``: an existing cluster (``ray.init(address=...)``); else a local Ray with ``workers`` CPUs. A Ray
    already initialised in this process is used as it is."""
    paths = list(paths)
    if str(templates) == MINE:
        raise LogsieveError(NO_MINING)
    label_table = _labels(labels)
    miner, _ = _miner_for(templates)
    sources, tasks = _plan(paths, chunk_bytes)
    keep = rejects is not None
    udf = BlockLines, {"miner": _state(miner), "chunk_bytes": chunk_bytes, "keep": keep}
    with ray_session(address, workers) as (ray, cpus):
        done, sessions = _run(ray, tasks, udf, group_blocks, cpus)
    stats, offsets, files = _fold(done, tasks, sources, keep)
    if rejects is not None:
        stats.write(rejects)
    if not sessions.height:
        raise DataError(", ".join(map(str, paths)), f"no block sessions found ({stats.summary()})")
    order = [pl.col("start_time"), pl.col("line_numbers").list.first(), pl.col("_pos")]
    sessions = _renumber(sessions.sort(order).drop("_pos"), offsets)
    return ParseResult(add_labels(sessions, label_table), stats, miner, files.select(list(FILES_SCHEMA)))


def parse_format_ray(
    paths: Iterable[str | Path],
    fmt: str | Path | LogFormat,
    rule: SessionRule,
    labels: str | Path | None = None,
    label_regex: str | None = None,
    label_field: str | None = None,
    templates: str | Path | TemplateMiner = "hdfs",
    rejects: str | Path | None = None,
    address: str | None = None,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> ParseResult:
    """``format_pipeline.parse_format_report`` with a ``--session-key`` rule on Ray (windows stay local)."""
    paths = list(paths)
    if rule.key is None:
        raise LogsieveError(NO_WINDOWS)
    if str(templates) == MINE:
        raise LogsieveError(NO_MINING)
    fmt = resolve_format(fmt)
    _line_label(fmt, label_regex, label_field)  # every option is checked before the long part
    label_table = _labels(labels)
    miner, _ = _templates(templates, fmt)
    sources, tasks = _plan(paths, chunk_bytes)
    keep = rejects is not None
    udf = KeyLines, {
        "fmt": fmt, "key": rule.key, "label_regex": label_regex, "label_field": label_field,
        "miner": _state(miner), "chunk_bytes": chunk_bytes, "keep": keep,
    }  # fmt: skip
    with ray_session(address, workers) as (ray, cpus):
        done, sessions = _run(ray, tasks, udf, group_keys, cpus)
    stats, offsets, files = _fold(done, tasks, sources, keep)
    _check_fit(files, fmt)
    for d in done:  # as parse_format_report: template rejects after every read reject
        stats.merge(load_stats(d["extra"]), d["source"], d["source_offset"])
    if not sum(d["good"] for d in done):
        raise DataError(", ".join(map(str, paths)), f"no line fits format {fmt.name} ({stats.summary()})")
    if not sessions.height:
        raise LogsieveError(f"--session-key {rule.key!r} matches no line of the input ({stats.lines:,} lines read)")
    helpers = ["_t0", "_l0", "_p0"] if "_t0" in sessions.columns else ["_l0", "_p0"]
    sessions = _renumber(sessions.sort([pl.col("line_numbers").list.min(), *helpers]).drop(helpers), offsets)
    if label_table is not None:
        from logsieve.table import join_labels

        sessions = join_labels(sessions, label_table)
    if rejects is not None:
        stats.write(rejects)
    return ParseResult(sessions, stats, miner, files.select(list(FILES_SCHEMA)))


@contextmanager
def ray_session(address: str | None, workers: int | None) -> Iterator[tuple[Any, int]]:
    """(ray, CPUs of the cluster): joins ``address`` or starts a local Ray of ``workers`` CPUs (and stops it after)."""
    try:
        import ray
        from ray.data.context import ShuffleStrategy
    except ImportError:
        raise LogsieveError(NO_RAY) from None
    if workers is not None and workers < 1:
        raise LogsieveError(f"--workers must be at least 1 (got {workers})")
    if address is not None:
        if workers is not None:
            raise LogsieveError("--workers sizes a local Ray; the cluster at --address brings its own CPUs")
        _check_reachable(address)
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(
                address=address, num_cpus=None if address else workers, include_dashboard=False,
                log_to_driver=False, configure_logging=False,
            )  # fmt: skip
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f" at {address}" if address else ""
            raise LogsieveError(f"cannot start or reach Ray{where}: {str(exc).splitlines()[0]}") from None
    ctx = ray.data.DataContext.get_current()
    before = ctx.enable_progress_bars, ctx.shuffle_strategy
    # a sort shuffle runs as plain tasks; the default hash shuffle starts aggregator actors, which cost ~10 s a run
    ctx.enable_progress_bars, ctx.shuffle_strategy = False, ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    log = logging.getLogger("ray.data")
    level = log.level
    log.setLevel(logging.ERROR)  # not a plan and a timing line per run on the console
    try:
        yield ray, max(1, int(ray.cluster_resources().get("CPU", 1)))
    finally:
        ctx.enable_progress_bars, ctx.shuffle_strategy = before
        log.setLevel(level)
        if started:
            ray.shutdown()


def _check_reachable(address: str) -> None:
    """A HOST:PORT nobody listens on is one clear line now; ``ray.init`` would retry it for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():  # "auto", "local": Ray resolves those itself
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise LogsieveError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc})") from None


# --- driver ---------------------------------------------------------------------------------------------------


def _labels(labels: str | Path | None) -> pl.DataFrame | None:
    """Fail on a bad label file before the long part."""
    if labels is None:
        return None
    from logsieve.table import load_label_table

    return load_label_table(labels)


def _state(miner: TemplateMiner | None) -> dict[str, Any] | None:
    return None if miner is None else miner.to_state()


def _plan(paths: list[str | Path], chunk_bytes: int) -> tuple[list[str], list[dict[str, Any]]]:
    """(inputs, tasks): the byte ranges of each plain input, one task per .gz; ``input`` is the input's index."""
    if not paths:
        raise DataError("(inputs)", "no log files given")
    sources = expand_paths(paths)
    tasks: list[dict[str, Any]] = []
    for i, src in enumerate(sources):
        if src == STDIN:
            raise LogsieveError(NO_STDIN)
        try:
            gz = is_gzip(src)
        except OSError as exc:
            raise DataError(src, f"cannot read ({exc.strerror or exc})") from None
        ranges = [(0, -1)] if gz else [(c.offset, c.size) for c in iter_chunks([src], chunk_bytes)]
        tasks += [{"task": len(tasks) + k, "input": i, "source": src, "offset": o, "size": n} for k, (o, n) in
                  enumerate(ranges)]  # fmt: skip
    return sources, tasks


def _run(
    ray: Any, tasks: list[dict[str, Any]], udf: tuple[type, dict[str, Any]], group: Callable, cpus: int
) -> tuple[list[dict], pl.DataFrame]:
    """One streaming Ray Data pipeline: per-line parse -> shuffle by bucket -> sessions per bucket; the tasks'
    statistics ride along in STATS_BUCKET. Returns (statistics in task order, sessions of every bucket)."""
    empty = pl.DataFrame(schema={"session_id": pl.String, "stats": pl.String})
    if not tasks:  # only empty plain files
        return [], empty
    cls, kwargs = udf
    buckets = BUCKETS_PER_CPU * cpus
    parse = {"cls": cls, "kwargs": kwargs | {"buckets": buckets}, "token": uuid.uuid4().hex}
    ds = ray.data.from_items(tasks, override_num_blocks=len(tasks))
    parsed = ds.map_batches(parse_tasks, batch_size=1, batch_format="pyarrow", fn_kwargs=parse)
    grouped = parsed.groupby("bucket", num_partitions=buckets).map_groups(group, batch_format="pyarrow")
    frames = [f for f in (pl.from_arrow(t) for t in ray.get(grouped.to_arrow_refs())) if isinstance(f, pl.DataFrame)]
    out = pl.concat([empty, *frames], how="diagonal_relaxed")  # Ray may put stats and sessions in one block
    is_stats = pl.col("stats").is_not_null()
    done = sorted((json.loads(s) for s in out.filter(is_stats)["stats"]), key=lambda d: d["task"])
    if errors := [d["error"] for d in done if "error" in d]:
        raise LogsieveError(errors[0])
    sessions = out.filter(~is_stats).drop("stats")
    dup = sessions.filter(pl.col("session_id").is_duplicated())
    if dup.height:  # buckets are polars hashes: nodes with different polars versions may disagree
        raise LogsieveError(
            f"session {dup['session_id'][0]!r} was grouped in two buckets: run the same polars on every Ray node"
        )
    return done, sessions


def _renumber(sessions: pl.DataFrame, offsets: list[int]) -> pl.DataFrame:
    """Line codes (task << TASK_SHIFT) + line within the task -> global 1-based line numbers."""
    tasks = list(range(len(offsets)))
    deltas = [o + 1 - (t << TASK_SHIFT) for t, o in zip(tasks, offsets, strict=True)]
    task = pl.element() // (1 << TASK_SHIFT)
    return sessions.with_columns(
        pl.col("line_numbers").list.eval(pl.element() + task.replace_strict(tasks, deltas, return_dtype=pl.Int64))
    )


def _fold(
    done: list[dict], tasks: list[dict[str, Any]], sources: list[str], keep: bool
) -> tuple[RejectStats, list[int], pl.DataFrame]:
    """Merge the tasks' statistics in input order (as the single-machine parse does) and number their lines:
    (statistics, global line offset of each task, the inputs with offset, lines and malformed lines)."""
    stats, offsets, offset = RejectStats(keep=keep), [], 0
    lines, malformed = [0] * len(sources), [0] * len(sources)
    for d, task in zip(done, tasks, strict=True):
        i, task_stats = task["input"], load_stats(d["stats"])
        d["source"], d["source_offset"] = task["source"], lines[i]
        stats.merge(task_stats, task["source"], lines[i])
        offsets.append(offset)
        offset += task_stats.lines
        lines[i] += task_stats.lines
        malformed[i] += task_stats.counts[MALFORMED]
    counts = pl.Series(lines, dtype=pl.Int64)
    files = pl.DataFrame(
        {"source": sources, "offset": counts.cum_sum() - counts, "lines": counts, "malformed": malformed},
        schema={**FILES_SCHEMA, "malformed": pl.Int64},
    )
    return stats, offsets, files
