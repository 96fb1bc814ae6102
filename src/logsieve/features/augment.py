"""Label-preserving augmentation of anomalous training sessions (training split only).

Each anomalous training session gets ``copies`` perturbed copies, each made by, independently:
- swap (``swap_prob``): exchange one random adjacent pair of events. Three DataNodes log concurrently,
  so neighbouring lines of a block interleave differently from run to run;
- drop (``drop_prob``): remove one occurrence of an event that is not anomaly-indicative and occurs
  more than once in the session (a lost duplicate line).
Anomaly-indicative events (those in a larger share of anomalous than of normal training sessions) are
never removed, no event type disappears, and a copy equal to any normal training sequence is discarded,
so every copy stays anomalous. Normal sessions, validation and test are never touched.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from logsieve.config import AugmentConfig
from logsieve.table import sequence_keys


def indicative_events(train: pl.DataFrame) -> set[str]:
    """Events present in a larger share of anomalous than of normal training sessions."""
    per_class = (
        train.select("label", pl.col("events").list.unique().alias("event"))
        .explode("event")
        .group_by("label", "event")
        .len()
        .join(train.group_by("label").agg(pl.len().alias("n")), on="label")
        .with_columns(share=pl.col("len") / pl.col("n"))
        .pivot(on="label", index="event", values="share")
        .fill_null(0.0)
    )
    if "1" not in per_class.columns:
        return set()
    normal = pl.col("0") if "0" in per_class.columns else pl.lit(0.0)
    return set(per_class.filter(pl.col("1") > normal)["event"].to_list())


def perturb(events: list[str], keep: set[str], cfg: AugmentConfig, rng: np.random.Generator) -> list[str]:
    out = list(events)
    if len(out) > 1 and rng.random() < cfg.swap_prob:
        i = int(rng.integers(len(out) - 1))
        out[i], out[i + 1] = out[i + 1], out[i]
    if rng.random() < cfg.drop_prob:
        counts: dict[str, int] = {}
        for e in out:
            counts[e] = counts.get(e, 0) + 1
        droppable = [i for i, e in enumerate(out) if e not in keep and counts[e] > 1]
        if droppable:
            del out[droppable[int(rng.integers(len(droppable)))]]
    return out


def swapped_normals(train: pl.DataFrame, copies: int, rng: np.random.Generator) -> tuple[list[str], list[list[str]]]:
    """Copies of each distinct normal sequence with one adjacent pair of *different* events swapped.

    Counts and event sets are unchanged; only the interleaving of concurrent lines moves. A copy equal to
    its original or to any anomalous training sequence is discarded."""
    anomalous = {tuple(e) for e in train.filter(pl.col("label") == 1)["events"].to_list()}
    normals = train.filter(pl.col("label") == 0)
    normals = normals.filter(sequence_keys(normals["events"]).is_first_distinct())
    ids, seqs = [], []
    for sid, events in zip(normals["session_id"].to_list(), normals["events"].to_list(), strict=True):
        movable = [i for i in range(len(events) - 1) if events[i] != events[i + 1]]
        for k in range(copies if movable else 0):
            i = movable[int(rng.integers(len(movable)))]
            copy = events[:i] + [events[i + 1], events[i]] + events[i + 2 :]
            if tuple(copy) not in anomalous:
                ids.append(f"{sid}#swap{k}")
                seqs.append(copy)
    return ids, seqs


def augment(train: pl.DataFrame, cfg: AugmentConfig, seed: int = 0) -> pl.DataFrame:
    """Return ``train`` plus perturbed anomalous copies (label 1, ids ``<id>#aug<k>``) and, with
    ``normal_copies``, swapped copies of distinct normal sequences (label 0, ids ``<id>#swap<k>``)."""
    if not cfg.enabled or (cfg.copies == 0 and cfg.normal_copies == 0):
        return train
    rng = np.random.default_rng(seed)
    keep = indicative_events(train)
    normals = {tuple(e) for e in train.filter(pl.col("label") == 0)["events"].to_list()}
    anomalies = train.filter(pl.col("label") == 1)
    ids, seqs = [], []
    for sid, events in zip(anomalies["session_id"].to_list(), anomalies["events"].to_list(), strict=True):
        for k in range(cfg.copies):
            copy = perturb(events, keep, cfg, rng)
            if tuple(copy) not in normals:
                ids.append(f"{sid}#aug{k}")
                seqs.append(copy)
    labels = [1] * len(ids)
    if cfg.normal_copies:
        normal_ids, normal_seqs = swapped_normals(train, cfg.normal_copies, rng)
        ids, seqs, labels = ids + normal_ids, seqs + normal_seqs, labels + [0] * len(normal_ids)
    extra = pl.DataFrame(
        {"session_id": ids, "label": labels, "events": seqs},
        schema={"session_id": pl.String, "label": pl.Int8, "events": pl.List(pl.String)},
    )
    return pl.concat([train, extra], how="diagonal_relaxed")
