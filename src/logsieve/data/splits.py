"""Train/validation/test splits: stratified random, or chronological when start times exist."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl
from sklearn.model_selection import train_test_split

from logsieve.config import DEFAULT_DATA, SplitMethod
from logsieve.errors import DataError

__all__ = ["SplitMethod", "Splits", "split_sessions"]


class Splits(NamedTuple):
    train: pl.DataFrame
    val: pl.DataFrame
    test: pl.DataFrame


def split_sessions(
    df: pl.DataFrame,
    method: SplitMethod = DEFAULT_DATA.split,
    val_frac: float = DEFAULT_DATA.val_frac,
    test_frac: float = DEFAULT_DATA.test_frac,
    seed: int = DEFAULT_DATA.split_seed,
) -> Splits:
    """Split sessions. ``random`` is stratified by label; ``chronological`` trains on the past and
    tests on the future (needs ``start_time``), which is the honest setting for a deployed detector.
    Defaults are ``DataConfig``'s, so a bare call splits as a run with the default config does."""
    if not (0 < val_frac < 1 and 0 < test_frac < 1 and val_frac + test_frac < 1):
        raise DataError("split", f"val_frac={val_frac} and test_frac={test_frac} must be in (0, 1) with sum < 1")
    n = df.height
    if method == "chronological":
        if "start_time" not in df.columns or df["start_time"].null_count() == n:
            raise DataError(
                "split",
                "chronological split needs a start_time column (session files without "
                "timestamps only support --split random)",
            )
        order = df.with_row_index("_i").sort(["start_time", "_i"], nulls_last=True)["_i"].to_numpy()
        n_test, n_val = int(round(n * test_frac)), int(round(n * val_frac))
        n_train = n - n_test - n_val
        train_idx, val_idx, test_idx = order[:n_train], order[n_train : n - n_test], order[n - n_test :]
    elif method == "random":
        idx = np.arange(n)
        labels = df["label"].fill_null(-1).to_numpy()
        strat = labels if np.unique(labels, return_counts=True)[1].min() >= 3 else None
        rest, test_idx = train_test_split(idx, test_size=test_frac, random_state=seed, stratify=strat)
        strat_rest = strat[rest] if strat is not None else None
        train_idx, val_idx = train_test_split(
            rest, test_size=val_frac / (1 - test_frac), random_state=seed, stratify=strat_rest
        )
    else:
        raise DataError("split", f"unknown split method {method!r} (random | chronological)")
    return Splits(*(df[np.sort(i)] for i in (train_idx, val_idx, test_idx)))
