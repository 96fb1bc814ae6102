"""Event counts per session: the count vectors of the baselines and the count features of the RNN head."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from logsieve.features.vocabulary import Vocabulary

COUNT_CAP = 16  # "exact" count features tell 0..15 apart; 16 stands for 16 or more


def count_vectors(vocab: Vocabulary, events: pl.Series) -> np.ndarray:
    """(n_sessions, len(vocab)) matrix of how often each event occurs (column 1 = unseen events)."""
    encoded = vocab.encode(events)
    lengths = encoded.list.len().to_numpy()
    rows = np.repeat(np.arange(len(events)), lengths)
    out = np.zeros((len(events), len(vocab)), dtype=np.float32)
    np.add.at(out, (rows, encoded.explode().drop_nulls().to_numpy()), 1.0)
    return out


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
