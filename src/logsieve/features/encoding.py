"""Sessions -> tensors: truncation, de-duplication with counts, and length-bucketed batches (the vocabulary
is fit on the training split only).

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

from logsieve.features.vocabulary import Vocabulary


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
        for chunk in chunks:  # longest first inside a batch, so packing needs no permutation
            yield chunk[torch.argsort(self.lengths[chunk], descending=True, stable=True)]

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
    has_counts = "count" in rows.columns
    counts = rows["count"].to_numpy().astype(np.float32) if has_counts else np.ones(rows.height, np.float32)
    return EncodedSet(*(torch.from_numpy(a) for a in (tokens, lengths, labels, counts)))


@dataclass
class TrainingSets:
    """What training needs from the train/validation splits, encoded once."""

    vocab: Vocabulary
    train: EncodedSet
    val: EncodedSet
    train_rows: int
    truncated: dict[str, int]
    train_sessions: int  # sessions the training rows stand for (augmented copies included)


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
        train.height,
    )
