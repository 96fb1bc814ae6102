"""A model bundle: one directory holding a trained detector and everything needed to score new logs with it.

(Skeleton: the in-memory ``Bundle`` that scoring, ``watch`` and ``serve`` use. Writing and reading a bundle
directory — manifest, hashes, safetensors/skops weights — lands in ``export_bundle`` / ``load_bundle``.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl


class SessionScorer(Protocol):
    """What every detector kind offers (``Detector``, ``CountBaseline``)."""

    threshold_: float

    def score(self, df: pl.DataFrame) -> np.ndarray: ...


@dataclass
class Bundle:
    """A fitted detector plus what scoring new logs needs.

    ``templates`` says how raw lines become events: ``"hdfs"`` (the shipped E1..E30 set) or ``"miner"``
    (then ``miner_state`` is a saved ``TemplateMiner`` as a dict). ``normal_profiles`` holds the distinct
    event-count vectors of the normal training sessions (columns ``events`` list[str] sorted, ``sessions``
    int: how many training sessions have it) for nearest-normal explanations; it may be empty.
    """

    model: SessionScorer
    kind: str  # "rnn" or a baseline kind ("decision-tree", ...)
    name: str  # preset or baseline name
    config: dict[str, Any]
    vocabulary: list[str]  # events seen in training
    templates: str = "hdfs"
    miner_state: dict[str, Any] | None = None
    normal_profiles: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"events": pl.List(pl.String), "sessions": pl.Int64})
    )
    metrics: dict[str, Any] = field(default_factory=dict)  # {"validation": {...}, "test": {...}}
    data: dict[str, Any] = field(default_factory=dict)  # training data fingerprint
    path: Path | None = None

    @property
    def threshold(self) -> float:
        return float(self.model.threshold_)


def normal_profiles(train: pl.DataFrame) -> pl.DataFrame:
    """Distinct event-count vectors of the normal training sessions (as sorted event lists) and their counts."""
    normals = train.filter(pl.col("label") == 0)
    return (
        normals.select(events=pl.col("events").list.sort())
        .group_by("events", maintain_order=True)
        .agg(sessions=pl.len().cast(pl.Int64))
    )
