"""Sessions -> (window of the previous h events, next event) pairs for next-event models such as DeepLog.

Each session is preceded by h START tokens, so its first event (and every event of a session shorter than h)
is predicted too, and may be followed by one END target, so a session that stops early is a surprise as well.
HDFS repeats itself (a few thousand distinct sequences among ~100k sessions, far fewer distinct pairs), so
pairs are built per distinct sequence and merged with their counts as weights: a count-weighted loss over
distinct pairs equals the plain loss over every pair of every session.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl


class Pairs(NamedTuple):
    """``windows`` (n, h) token ids, ``targets`` (n,) the token that follows, ``owner`` (n,) the sequence
    each pair comes from (or, after ``merge_pairs``, ``weights`` is what they stand for)."""

    windows: np.ndarray
    targets: np.ndarray
    owner: np.ndarray


def distinct_sequences(tokens: pl.Series) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """(distinct sequences in order of first appearance, how many rows hold each, row -> distinct index)."""
    groups = (
        pl.DataFrame({"tokens": tokens})
        .with_row_index("row")
        .group_by("tokens", maintain_order=True)
        .agg(pl.col("row"))
    )
    rows = groups["row"]
    counts = rows.list.len().to_numpy().astype(np.int64)
    inverse = np.empty(len(tokens), dtype=np.int64)
    inverse[rows.explode().to_numpy()] = np.repeat(np.arange(groups.height), counts)
    return groups["tokens"], counts, inverse


def next_event_pairs(sequences: pl.Series, window: int, start: int, end: int | None) -> Pairs:
    """Every (previous ``window`` tokens, next token) pair of each list[int] sequence, START-padded on the
    left; with ``end`` each sequence also yields (its last ``window`` tokens, ``end``). Vectorised: one
    START-prefixed copy of all sequences back to back, and the windows are views into it."""
    lengths = sequences.list.len().to_numpy().astype(np.int64)
    flat = sequences.explode().drop_nulls().to_numpy().astype(np.int64)
    n, extra = len(lengths), int(end is not None)
    # segment i is window START tokens then sequence i; it begins at seg_start[i]
    seg_len = lengths + window
    seg_start = np.cumsum(seg_len) - seg_len
    # + window at the end: END rows read one index past their segment, and the window view is never empty
    joined = np.full(int(seg_len.sum()) + window, start, dtype=np.int64)
    joined[np.repeat(seg_start + window, lengths) + _ranks(lengths)] = flat
    per_seq = lengths + extra
    owner = np.repeat(np.arange(n), per_seq)
    step = _ranks(per_seq)  # position of the target within its sequence (0 .. len, len = END)
    firsts = np.repeat(seg_start, per_seq) + step  # the window of target j starts j tokens into the segment
    windows = np.lib.stride_tricks.sliding_window_view(joined, window)[firsts]
    targets = joined[firsts + window]  # END rows read a placeholder, replaced below
    if end is not None:
        targets = np.where(step == np.repeat(lengths, per_seq), end, targets)
    return Pairs(np.ascontiguousarray(windows), targets, owner)


def merge_pairs(pairs: Pairs, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Identical (window, target) pairs merged: (windows, targets, summed weights), in a fixed (sorted) order.
    ``weights`` holds one weight per sequence (e.g. how many sessions have it)."""
    both = np.concatenate([pairs.windows, pairs.targets[:, None]], axis=1)
    distinct, inverse = np.unique(both, axis=0, return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=weights[pairs.owner].astype(np.float64), minlength=len(distinct))
    return distinct[:, :-1], distinct[:, -1], summed


def _ranks(lengths: np.ndarray) -> np.ndarray:
    """0 .. length-1 for each length, concatenated."""
    total = int(lengths.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
