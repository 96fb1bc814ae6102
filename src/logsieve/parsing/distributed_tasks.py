"""What runs on the Ray workers for ``parse --backend ray`` (see ``distributed.py`` for the plan): the per-task
parse that turns a byte range (or a whole .gz) into one row per (line, session key) plus a statistics row, and the
per-bucket grouping into sessions. Both only call the single-machine functions, so the output cannot drift."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.parsing.format_pipeline import _events, _line_label
from logsieve.parsing.formats import LogFormat
from logsieve.parsing.lines import Chunk, RejectStats, iter_chunks
from logsieve.parsing.pipeline import content_lines, known_lines, mined_lines
from logsieve.parsing.reader import read_chunk
from logsieve.parsing.session_keys import key_sessions, with_keys
from logsieve.parsing.sessionize import group_lines, merge_groups
from logsieve.parsing.templates import TemplateMatcher

if TYPE_CHECKING:
    import pyarrow as pa

STATS_BUCKET = -1  # the bucket of the tasks' statistics rows
TASK_SHIFT = 40  # a line's code while grouping: (task << 40) + its line within the task; sorts as the line numbers


# --- per task (map_batches) -------------------------------------------------------------------------------------------


def dump_stats(stats: RejectStats, keep: bool) -> dict[str, Any]:
    rows = stats.rows if keep else []
    return {"lines": stats.lines, "counts": list(stats.counts.items()), "unblocked": stats.unblocked, "rows": rows}


def load_stats(d: dict[str, Any]) -> RejectStats:
    return RejectStats(d["lines"], Counter(dict(d["counts"])), d["unblocked"], True, [tuple(r) for r in d["rows"]])


def _read_task(
    task: dict[str, Any], chunk_bytes: int, parse: Callable[[Chunk], tuple[pl.DataFrame, RejectStats]], n: str
) -> tuple[pl.DataFrame, RejectStats]:
    """Every chunk of one task through ``parse``; lines (column ``n``) and rejects numbered from the task's start."""
    src = task["source"]
    chunks = iter_chunks([src], chunk_bytes) if task["size"] < 0 else [Chunk(src, offset=task["offset"],
                                                                              size=task["size"])]  # fmt: skip
    frames, stats = [parse(Chunk(src, data=b""))[0]], RejectStats(keep=True)
    for chunk in chunks:
        df, chunk_stats = parse(chunk)
        frames.append(df.with_columns(pl.col(n).cast(pl.Int64) + stats.lines))
        stats.merge(chunk_stats, src, stats.lines)
    return pl.concat(frames, how="vertical_relaxed"), stats


def _rows(lines: pl.DataFrame, keys: str, n: str, cols: Sequence[str], buckets: int, info: dict[str, Any]) -> pa.Table:
    """One row per (line, key) with the key's place in the line and a hash bucket, plus the task's stats row."""
    rows = (
        lines.select(
            pl.col(keys).alias("key"),
            pl.col(n).cast(pl.Int64).alias("n"),
            pl.int_ranges(pl.col(keys).list.len(), dtype=pl.Int32).alias("pos"),
            *cols,
        )
        .explode("key", "pos")
        .with_columns(task=pl.lit(info["task"], pl.Int32), bucket=(pl.col("key").hash(seed=0) % buckets).cast(pl.Int32))
    )
    return _arrow(pl.concat([rows.with_columns(stats=pl.lit(None, pl.String)), _info([info])], how="diagonal"))


def _info(infos: list[dict[str, Any]]) -> pl.DataFrame:
    """Statistics (or errors) of tasks as rows of STATS_BUCKET."""
    tasks = [d["task"] for d in infos]
    data = {"task": tasks, "bucket": [STATS_BUCKET] * len(tasks), "stats": [json.dumps(d) for d in infos]}
    return pl.DataFrame(data, schema={"task": pl.Int32, "bucket": pl.Int32, "stats": pl.String})


def _arrow(df: pl.DataFrame) -> pa.Table:
    return df.to_arrow(compat_level=pl.CompatLevel.oldest())  # plain strings: every block then has one schema


_PARSERS: dict[str, Any] = {}  # this run's parser in a Ray worker process (see parse_tasks)


def parse_tasks(batch: pa.Table, cls: type, kwargs: dict[str, Any], token: str) -> pa.Table:
    """Ray Data UDF. Plain tasks, not an actor pool: actors would hold their CPUs while the shuffle waits for them
    (and start anew each run); a worker process runs many tasks, so one parser per process and run keeps the
    template cache warm all the same."""
    if token not in _PARSERS:
        _PARSERS.clear()
        _PARSERS[token] = cls(**kwargs)
    try:
        return _PARSERS[token](batch)
    except LogsieveError as exc:  # e.g. a file this node cannot read: a stats row carries it, as one clear line
        return _arrow(_info([{"task": t, "error": str(exc)} for t in batch.column("task").to_pylist()]))


class BlockLines:
    """HDFS tasks -> block rows (one parser per worker process, so the template cache lives across tasks)."""

    def __init__(self, miner: dict[str, Any] | None, chunk_bytes: int, keep: bool, buckets: int) -> None:
        from logsieve.parsing.mining import TemplateMiner

        self.matcher = TemplateMatcher()
        self.miner = None if miner is None else TemplateMiner.from_state(miner)
        self.chunk_bytes, self.keep, self.buckets = chunk_bytes, keep, buckets

    def _parse(self, chunk: Chunk) -> tuple[pl.DataFrame, RejectStats]:
        if self.miner is None:
            return known_lines(self.matcher, chunk)
        lines, stats = content_lines(chunk)
        return mined_lines(self.miner, False, lines), stats

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        out = []
        for task in batch.to_pylist():
            lines, stats = _read_task(task, self.chunk_bytes, self._parse, "line_number")
            info = {"task": task["task"], "stats": dump_stats(stats, self.keep)}
            out.append(_rows(lines, "blocks", "line_number", ["timestamp", "event"], self.buckets, info))
        return pa.concat_tables(out)


class KeyLines:
    """Tasks of any format -> rows keyed by ``--session-key`` (parse_format_report's per-line part)."""

    def __init__(
        self, fmt: LogFormat, key: str, label_regex: str | None, label_field: str | None,
        miner: dict[str, Any] | None, chunk_bytes: int, keep: bool, buckets: int,
    ) -> None:  # fmt: skip
        from logsieve.parsing.mining import TemplateMiner

        self.fmt, self.key, self.chunk_bytes, self.keep, self.buckets = fmt, key, chunk_bytes, keep, buckets
        self.label = _line_label(fmt, label_regex, label_field)
        self.miner = None if miner is None else TemplateMiner.from_state(miner)

    def _parse(self, chunk: Chunk) -> tuple[pl.DataFrame, RejectStats]:
        return read_chunk(chunk.read(), self.fmt, chunk.source, chunk.error)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        out = []
        for task in batch.to_pylist():
            table, stats = _read_task(task, self.chunk_bytes, self._parse, "n")
            if self.label is not None:
                table = table.with_columns(label=self.label)
            extra = RejectStats(keep=True)  # template rejects, numbered from the task's start like the read ones
            table = _events(table.with_columns(source=pl.lit(task["source"]), file_line=pl.col("n") + 1), self.miner,
                            False, extra)  # fmt: skip
            keyed = with_keys(table, self.key)
            has = keyed["keys"].list.len() > 0
            extra.unblocked = int((~has).sum())
            info = {"task": task["task"], "stats": dump_stats(stats, self.keep), "extra": dump_stats(extra, self.keep),
                    "good": table.height}  # fmt: skip
            cols = [c for c in ("timestamp", "label", "event") if c in keyed.columns]
            out.append(_rows(keyed.filter(has), "keys", "n", cols, self.buckets, info))
        return pa.concat_tables(out)


# --- grouping (map_groups: one bucket of rows) ----------------------------------------------------------------


def _coded(batch: pa.Table) -> pl.DataFrame | None:
    """A bucket's rows with ``line_number``: a code that sorts as the global line numbers (see TASK_SHIFT); None
    for the statistics bucket."""
    rows = pl.from_arrow(batch)
    assert isinstance(rows, pl.DataFrame)
    if rows["bucket"][0] == STATS_BUCKET:
        return None
    return rows.with_columns(line_number=(pl.col("task").cast(pl.Int64) * (1 << TASK_SHIFT)) + pl.col("n"))


def group_blocks(batch: pa.Table) -> pa.Table:
    """Block sessions of a bucket via ``group_lines`` + ``merge_groups``; ``_pos`` (the block's place in its first
    line) breaks ties between sessions that start on the same line, as the single-machine order does."""
    rows = _coded(batch)
    if rows is None:
        return batch.select(["stats"])
    rows = rows.sort("timestamp", "line_number", "pos")
    grouped = group_lines(rows.select(pl.concat_list("key").alias("blocks"), "timestamp", "line_number", "event"))
    first = rows.group_by("key", maintain_order=True).agg(pl.col("pos").first())  # the same groups, same order
    return _arrow(merge_groups([grouped]).with_columns(_pos=first["pos"]))


def group_keys(batch: pa.Table) -> pa.Table:
    """Keyed sessions of a bucket via ``key_sessions`` (rows back in line order first, as it expects), plus the
    time, line and place of each session's first row: the single-machine order among sessions of one first line."""
    rows = _coded(batch)
    if rows is None:
        return batch.select(["stats"])
    rows = rows.sort("line_number", "pos")
    sessions = key_sessions(rows.with_columns(keys=pl.concat_list("key")).drop("key"))
    first = ["timestamp", "line_number", "pos"] if "timestamp" in rows.columns else ["line_number", "pos"]
    helpers = rows.sort(first).unique("key", keep="first", maintain_order=True)
    named = {"key": "session_id", "timestamp": "_t0", "line_number": "_l0", "pos": "_p0"}
    helpers = helpers.select(pl.col(c).alias(named[c]) for c in ["key", *first])
    return _arrow(sessions.join(helpers, on="session_id", how="left", maintain_order="left"))
