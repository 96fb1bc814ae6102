"""Realistic HDFS block sessions and raw logs, generated from the life-cycle recipes in ``recipes.py``.

One timeline feeds both outputs: every block draws a recipe, every part a variant and times, and all lines are
sorted by time. ``simulate_sessions`` groups that timeline by block (what a parser would recover);
``simulate_logs`` renders the same timeline as raw HDFS lines (``render.py``). Same seed, same sessions.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.simulator.recipes import LOG_START, RECIPES, Part, weighted_choice
from logsieve.table import validate_sessions

# allocateBlock lines per hour since LOG_START in raw/hdfs_sample_2pct.log.gz (all lines of a 2 % block sample):
# MapReduce jobs make the load bursty, with idle hours in between
HOURLY_ALLOCATIONS = (727, 11, 141, 545, 438, 339, 0, 0, 0, 0, 8, 0, 0, 26, 666, 658, 43, 78, 562, 15, 0, 0, 0, 0,
                      363, 647, 412, 0, 0, 16, 719, 667, 682, 673, 639, 749, 674, 720, 283)  # fmt: skip
SAMPLE_TO_FULL = 575_061 / 11_501  # HDFS_v1 blocks / sample blocks
WRITE_SECONDS = (15.0, 70.0)  # a 64 MB block through a 3-node pipeline (raw log: ~35 s typical)
LIFETIME_MEDIAN, LIFETIME_SIGMA, LIFETIME_MAX = 3600.0, 0.8, 4 * 3600.0  # allocate -> delete (raw log: ~1 h)
ASK_BUCKET_SECONDS, ASK_MAX_BLOCKS = 30.0, 4  # E30 "ask … to delete" batches blocks invalidated close in time


def check_args(n_blocks: int, anomaly_rate: float, seed: int = 0) -> None:
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) or n_blocks < 1:
        raise LogsieveError(f"number of blocks must be a positive integer, got {n_blocks!r}")
    if not isinstance(anomaly_rate, (int, float, np.number)) or not 0.0 <= float(anomaly_rate) <= 1.0:
        raise LogsieveError(f"anomaly rate must be a number within [0, 1], got {anomaly_rate!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LogsieveError(f"seed must be a non-negative integer, got {seed!r}")


def _assign_recipes(n: int, anomaly_rate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exactly round(n * rate) anomalies at random positions; a recipe of the right class for every block."""
    labels = np.zeros(n, np.int8)
    labels[rng.permutation(n)[: round(n * anomaly_rate)]] = 1
    recipe = np.empty(n, np.int16)
    for label in (0, 1):
        ids = np.array([i for i, r in enumerate(RECIPES) if r.label == label])
        w = np.array([RECIPES[i].weight for i in ids])
        mask = labels == label
        recipe[mask] = ids[rng.choice(len(ids), size=int(mask.sum()), p=w / w.sum())]
    return labels, recipe


def allocation_times(n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted allocation times (s): a Poisson process whose hourly rate follows the real log, scaled to HDFS_v1
    (575,061 blocks take the real 38.7 h; bigger runs repeat the pattern)."""
    per_hour = np.asarray(HOURLY_ALLOCATIONS) * SAMPLE_TO_FULL + 1.0  # +1: never completely idle
    hours = len(per_hour) * int(np.ceil(n / per_hour.sum()))
    expected = np.r_[0.0, np.cumsum(np.resize(per_hour, hours))]  # blocks allocated by each hour boundary
    return np.interp(np.sort(rng.random(n)) * n, expected, 3600.0 * np.arange(hours + 1))


Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # block, event, time


def _part_rows(part: Part, blocks: np.ndarray, anchors: dict[str, np.ndarray], rng: np.random.Generator) -> list[Rows]:
    """(block, event, time) rows of one part for the given blocks: a variant, start and spacing per occurrence."""
    reps = np.fromiter(part.repeat.keys(), int)[weighted_choice(rng, part.repeat, len(blocks))]
    inst = np.repeat(blocks, reps)  # one entry per occurrence of the part
    if part.anchor == "middle":
        lo, hi = anchors["finish"][inst] + 1.0, anchors["delete"][inst] - 1.0
        base = lo + rng.random(len(inst)) * (hi - lo)
    else:
        base = anchors[part.anchor][inst]
    base = base + rng.uniform(*part.offset, size=len(inst))
    choice = weighted_choice(rng, part.variants, len(inst))
    out = []
    for v, text in enumerate(part.variants):
        sel = choice == v
        if not text or not sel.any():
            continue
        tokens = text.split()
        events = np.array([int(t[1:]) for t in tokens if t != "|"], np.int8)
        pauses = np.array([i for i, t in enumerate(tokens) if t == "|"]) - np.arange(tokens.count("|"))
        gaps = rng.exponential(part.gap, size=(int(sel.sum()), len(events)))
        gaps[:, 0] = 0.0
        for p in pauses:
            gaps[:, p] += rng.uniform(*part.pause, size=len(gaps))
        t = base[sel][:, None] + np.cumsum(gaps, axis=1)
        out.append((np.repeat(inst[sel], len(events)), np.tile(events, len(gaps)), t.ravel()))
    return out


def _batch_asks(rows: pl.DataFrame) -> pl.DataFrame:
    """Merge E30 rows invalidated close in time into one multi-block line (shared time and ``line`` key)."""
    asks = (
        rows.filter(pl.col("event") == 30)
        .sort("t")
        .with_columns(bucket=(pl.col("t") / ASK_BUCKET_SECONDS).floor().cast(pl.Int64))
        .with_columns(batch=pl.int_range(pl.len()).over("bucket") // ASK_MAX_BLOCKS)
        .with_columns(line=pl.struct("bucket", "batch").rank("dense").cast(pl.Int64) - 1)
        .with_columns(t=pl.col("t").max().over("line"))
        .drop("bucket", "batch")
    )
    others = rows.filter(pl.col("event") != 30).with_columns(line=pl.int_range(pl.len(), dtype=pl.Int64) + asks.height)
    return pl.concat([others, asks])


def simulate_timeline(n_blocks: int, anomaly_rate: float = 0.03, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Blocks (block, block_id, label, recipe, alloc time) and their lines in file order (block, event, t, line_no).

    ``t`` is seconds since ``LOG_START``; a multi-block line has one row per block sharing ``line_no``.
    """
    check_args(n_blocks, anomaly_rate, seed)
    rng = np.random.default_rng(seed)
    labels, recipe = _assign_recipes(n_blocks, anomaly_rate, rng)
    ids = rng.integers(-(2**63), 2**63 - 1, size=n_blocks, dtype=np.int64)  # HDFS block ids: random signed 64 bit
    while (dup := np.setdiff1d(np.arange(n_blocks), np.unique(ids, return_index=True)[1])).size:  # ~never
        ids[dup] = rng.integers(-(2**63), 2**63 - 1, size=dup.size, dtype=np.int64)
    alloc = allocation_times(n_blocks, rng)
    finish = alloc + rng.uniform(*WRITE_SECONDS, size=n_blocks)
    delete = finish + np.minimum(rng.lognormal(np.log(LIFETIME_MEDIAN), LIFETIME_SIGMA, size=n_blocks), LIFETIME_MAX)
    anchors = {"alloc": alloc, "finish": finish, "delete": delete}

    parts: list[Rows] = []
    for r, rec in enumerate(RECIPES):
        members = np.flatnonzero(recipe == r)
        if len(members):
            for part in rec.parts:
                parts += _part_rows(part, members, anchors, rng)
    rows = pl.DataFrame({
        "block": np.concatenate([p[0] for p in parts]).astype(np.int32),
        "event": np.concatenate([p[1] for p in parts]),
        "t": np.concatenate([p[2] for p in parts]),
    })  # fmt: skip
    rows = _batch_asks(rows).sort("t", "line")
    new_line = (pl.col("line") != pl.col("line").shift()).fill_null(True)
    rows = rows.with_columns(line_no=new_line.cum_sum().cast(pl.Int64))  # 1-based, as in the file
    blocks = pl.DataFrame({
        "block": np.arange(n_blocks, dtype=np.int32),
        "block_id": "blk_" + pl.Series(ids).cast(pl.String),
        "label": labels,
        "recipe": pl.Series([r.name for r in RECIPES])[recipe],
        "alloc": alloc,
    })  # fmt: skip
    return blocks, rows.drop("line")


def sessions_from_timeline(blocks: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """Group the timeline by block in file order: the session table (sessions ordered by their first line)."""
    per_block = rows.group_by("block", maintain_order=True).agg(
        events="E" + pl.col("event").cast(pl.String),
        start_time=pl.lit(LOG_START) + pl.duration(seconds=pl.col("t").first().floor()),
        line_numbers=pl.col("line_no"),
    )
    df = per_block.join(blocks, on="block", how="left", maintain_order="left").select(
        session_id="block_id",
        label=pl.col("label").cast(pl.Int8),
        events="events",
        start_time=pl.col("start_time").cast(pl.Datetime("us")),
        line_numbers="line_numbers",
    )
    return validate_sessions(df, "simulated sessions")


def simulate_sessions(n_blocks: int, anomaly_rate: float = 0.03, seed: int = 0) -> pl.DataFrame:
    """The session table of ``n_blocks`` simulated HDFS blocks (deterministic for a seed)."""
    return sessions_from_timeline(*simulate_timeline(n_blocks, anomaly_rate, seed))


class SimulatedLogs(NamedTuple):
    log: Path  # HDFS.log
    labels: Path  # anomaly_label.csv
    lines: int
    blocks: int
    anomalies: int


def simulate_logs(n_blocks: int, anomaly_rate: float = 0.03, seed: int = 0, out_dir: str | Path = ".") -> SimulatedLogs:
    """Write ``OUT/HDFS.log`` and ``OUT/anomaly_label.csv`` holding the same sessions as ``simulate_sessions``."""
    from logsieve.simulator.render import write_labels, write_log

    blocks, rows = simulate_timeline(n_blocks, anomaly_rate, seed)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LogsieveError(f"{out}: output must be a directory")
    out.mkdir(parents=True, exist_ok=True)
    log = write_log(blocks, rows, out / "HDFS.log", seed=seed)
    labels = write_labels(blocks, out / "anomaly_label.csv")
    return SimulatedLogs(log, labels, int(rows["line_no"][-1]), n_blocks, int(blocks["label"].sum()))
