"""Label noise for the robustness study: flip a seeded share of the training labels.

Only the training split is ever passed here; validation and test keep their labels, so a noisy run is
still tuned and scored against the truth and the figures show what mislabelled training data costs.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError


def noise_rates(text: str | None) -> list[float]:
    """--label-noise as distinct rates in [0, 1), in the order given."""
    if text is None:
        return []
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise LogsieveError(f"--label-noise {text!r}: give comma-separated numbers such as 0,0.01,0.05") from None
    if not rates or any(not 0 <= r < 1 for r in rates) or len(set(rates)) != len(rates):
        raise LogsieveError(f"--label-noise {text!r}: give distinct rates from 0 up to (not including) 1")
    return rates


def flip_labels(train: pl.DataFrame, rate: float, seed: int = 0) -> pl.DataFrame:
    """A copy of ``train`` with exactly ``round(rate * n)`` session labels flipped (0 <-> 1).

    The flipped rows depend only on ``seed``, ``rate`` and the table's row order, so every model of a study
    sees the same mislabelled sessions at a given rate. Per session, not stratified: real label noise does
    not know the class balance either. Fits nothing.
    """
    if not 0.0 <= rate <= 1.0:
        raise LogsieveError(f"label-noise rate {rate:g} must be between 0 and 1")
    n = train.height
    k = round(rate * n)
    if k == 0:
        return train
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).choice(n, size=k, replace=False)] = True
    flipped = (1 - pl.col("label")).cast(pl.Int8)
    return train.with_columns(pl.when(pl.Series(mask)).then(flipped).otherwise(pl.col("label")).alias("label"))
