"""Sessions -> tensors: a vocabulary fit on the training split only, truncation, de-duplication with
counts, and length-bucketed batches.

HDFS repeats itself: ~5 % of sessions are distinct. Collapsing identical (sequence, label) rows into one
row carrying its count as a loss weight makes an epoch cost per distinct sequence, with the same loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
import torch

PAD, UNK = 0, 1
COUNT_CAP = 16  # "exact" count features tell 0..15 apart; 16 stands for 16 or more


class Vocabulary:
    """Event id -> index. Index 0 pads, 1 stands for events never seen in training."""

    def fit(self, events: pl.Series) -> Vocabulary:
        seen = events.explode().drop_nulls().unique().sort().to_list()
        self.events_: list[str] = seen
        self.index_: dict[str, int] = {e: i + 2 for i, e in enumerate(seen)}
        return self

    def __len__(self) -> int:
        return len(self.events_) + 2

    def encode(self, events: pl.Series) -> pl.Series:
        """list[str] -> list[int]; unknown events map to UNK."""
        return events.list.eval(pl.element().replace_strict(self.index_, default=UNK, return_dtype=pl.Int64))

    def to_dict(self) -> dict[str, list[str]]:
        return {"events": self.events_}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Vocabulary:
        return cls().fit(pl.Series([data["events"]]))


def truncate(events: pl.Series, max_len: int, keep: Literal["head", "tail"] = "head") -> tuple[pl.Series, int]:
    """Cut sessions longer than ``max_len``; returns the cut series and how many sessions were cut."""
    n_cut = int((events.list.len() > max_len).sum())
    cut = events.list.head(max_len) if keep == "head" else events.list.tail(max_len)
    return cut, n_cut


def collapse(df: pl.DataFrame, dedup: bool = True) -> pl.DataFrame:
    """Rows (events, label, count, first_row). With ``dedup`` identical (events, label) rows merge;
    ``first_row`` keeps the order of first appearance so results do not depend on hashing."""
    rows = df.select("events", "label").with_row_index("first_row")
    if not dedup:
        return rows.with_columns(count=pl.lit(1, pl.Int64))
    return (
        rows.group_by("events", "label")
        .agg(pl.len().cast(pl.Int64).alias("count"), pl.col("first_row").min())
        .sort("first_row")
    )


@dataclass
class EncodedSet:
    """Padded index tensor with lengths, labels and per-row weights (counts)."""

    tokens: torch.Tensor  # (n, max_len) int64, PAD-padded
    lengths: torch.Tensor  # (n,) int64
    labels: torch.Tensor  # (n,) float32
    counts: torch.Tensor  # (n,) float32, how many sessions each row stands for

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def batches(
        self, batch_size: int, shuffle: bool, bucket: bool, generator: torch.Generator | None = None
    ) -> Iterator[torch.Tensor]:
        """Index batches. Bucketing sorts by length so padding stays small; batch order is shuffled."""
        n = len(self)
        if bucket:
            noise = torch.rand(n, generator=generator) if shuffle else torch.zeros(n)
            order = torch.argsort(self.lengths.double() + noise.double() * 0.5, stable=True)
        else:
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        chunks = list(torch.split(order, batch_size))
        if shuffle and bucket:
            chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
        yield from chunks

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        lengths = self.lengths[idx]
        width = int(lengths.max())
        return self.tokens[idx, :width], lengths, self.labels[idx], self.counts[idx]


def encode_rows(vocab: Vocabulary, rows: pl.DataFrame) -> EncodedSet:
    """Encode collapsed rows (``events``, ``label``, ``count``) into padded tensors."""
    encoded = vocab.encode(rows["events"])
    lengths = encoded.list.len().to_numpy().astype(np.int64)
    width = max(int(lengths.max(initial=1)), 1)
    flat = encoded.explode().to_numpy().astype(np.int64)
    tokens = np.zeros((rows.height, width), dtype=np.int64)
    row_idx = np.repeat(np.arange(rows.height), lengths)
    col_idx = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    tokens[row_idx, col_idx] = flat
    labels = rows["label"].fill_null(0).to_numpy().astype(np.float32)
    counts = rows["count"].to_numpy().astype(np.float32) if "count" in rows.columns else np.ones(rows.height, np.float32)
    return EncodedSet(torch.from_numpy(tokens), torch.from_numpy(lengths), torch.from_numpy(labels), torch.from_numpy(counts))


@dataclass
class TrainingSets:
    """What training needs from the train/validation splits, encoded once."""

    vocab: Vocabulary
    train: EncodedSet
    val: EncodedSet
    train_rows: int
    truncated: dict[str, int]


def encode_splits(
    train: pl.DataFrame, val: pl.DataFrame, max_len: int, keep: Literal["head", "tail"], dedup: bool
) -> TrainingSets:
    """Truncate both splits, fit the vocabulary on train only, collapse duplicates and encode.
    Validation is always de-duplicated: its counts make the per-session metrics exact."""
    train_events, train_cut = truncate(train["events"], max_len, keep)
    val_events, val_cut = truncate(val["events"], max_len, keep)
    vocab = Vocabulary().fit(train_events)
    rows = collapse(train.with_columns(events=train_events), dedup=dedup)
    return TrainingSets(
        vocab,
        encode_rows(vocab, rows),
        encode_rows(vocab, collapse(val.with_columns(events=val_events), dedup=True)),
        rows.height,
        {"train": train_cut, "val": val_cut},
    )


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
