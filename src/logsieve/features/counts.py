"""Event counts per session: the count vectors of the baselines, the count features of the RNN head and the
normal count profiles that run directories and bundles carry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import torch

from logsieve.artifacts import atomic_write_text, read_json
from logsieve.errors import LogsieveError
from logsieve.features.vocabulary import UNK, Vocabulary

COUNT_CAP = 16  # "exact" count features tell 0..15 apart; 16 stands for 16 or more


def count_vectors(vocab: Vocabulary, events: pl.Series) -> np.ndarray:
    """(n_sessions, len(vocab)) matrix of how often each event occurs (column 1 = unseen events)."""
    lengths = events.list.len().to_numpy()
    codes = events.explode().drop_nulls().replace_strict(vocab.index_, default=UNK, return_dtype=pl.Int64).to_numpy()
    rows = np.repeat(np.arange(len(events)), lengths)  # flat replace + bincount: ~3x faster than list.eval + add.at
    flat = np.bincount(rows * len(vocab) + codes, minlength=len(events) * len(vocab))
    return flat.reshape(len(events), len(vocab)).astype(np.float32)


def count_features(counts: torch.Tensor, encoding: str) -> torch.Tensor:
    """(n, vocab) event counts -> features. ``log``: log(1 + count). ``exact``: a one-hot of the count per event
    (capped at COUNT_CAP) plus the log — HDFS labels hinge on exact counts ("eight E3 and four E4"), which
    a one-hot makes a single weight instead of a sharp bend in a smooth function."""
    log = torch.log1p(counts)
    if encoding == "log":
        return log
    if encoding != "exact":
        raise ValueError(f"unknown count encoding {encoding!r}")
    exact = torch.nn.functional.one_hot(counts.clamp(max=COUNT_CAP).long(), COUNT_CAP + 1).flatten(1)
    return torch.cat([exact.to(log.dtype), log], dim=1)


def count_width(vocab_size: int, encoding: str) -> int:
    """How many features ``count_features`` makes for this vocabulary (0 when counts are off)."""
    return 0 if encoding == "none" else count_features(torch.zeros(1, vocab_size), encoding).shape[1]


def normal_profiles(train: pl.DataFrame) -> pl.DataFrame:
    """Distinct event-count vectors of the normal training sessions (as sorted event lists) and how many
    sessions have each, most common first: the "nearest normal" a flagged session is explained against.
    HDFS collapses ~90k normal sessions to ~150 such profiles, so they ship inside a bundle."""
    normals = train.filter(pl.col("label") == 0)
    return (
        normals.select(events=pl.col("events").cast(pl.List(pl.String)).list.sort())
        .group_by("events", maintain_order=True)
        .agg(sessions=pl.len().cast(pl.Int64))
        .sort("sessions", descending=True, maintain_order=True)
    )


PROFILE_SCHEMA = pl.Schema({"events": pl.List(pl.String()), "sessions": pl.Int64()})


def write_profiles(path: str | Path, profiles: pl.DataFrame) -> Path:
    """Profiles as JSON, one ``{"events": [...], "sessions": n}`` row a line: small (hundreds of rows), readable."""
    rows = ",\n".join(json.dumps(row) for row in profiles.select(*PROFILE_SCHEMA.names()).to_dicts())
    return atomic_write_text(path, f'{{"profiles": [\n{rows}\n]}}\n')


def read_profiles(path: str | Path) -> pl.DataFrame:
    """Read what ``write_profiles`` wrote; damage is one LogsieveError line."""
    rows = read_json(path, "normal profiles")
    rows = rows.get("profiles") if isinstance(rows, dict) else None
    ok = isinstance(rows, list) and all(
        isinstance(r, dict)
        and isinstance(r.get("sessions"), int)
        and isinstance(r.get("events"), list)
        and all(isinstance(e, str) for e in r["events"])
        for r in rows
    )
    if not ok:
        raise LogsieveError(f"{path}: normal profiles are damaged (expected {{'profiles': [{{events, sessions}}]}})")
    return pl.DataFrame(rows, schema=PROFILE_SCHEMA)
