"""The one way a config turns (train, val) session tables into training tensors.

Augmentation belongs to this step, not to the model: whoever trains (``Detector.fit``, every trial of a
search) must see the same rows for the same config, so both call this one function.
"""

from __future__ import annotations

import polars as pl

from logsieve.config import RunConfig
from logsieve.features.augment import augment
from logsieve.features.encoding import TrainingSets, encode_splits


def prepare_training_data(train: pl.DataFrame, val: pl.DataFrame, cfg: RunConfig) -> TrainingSets:
    """Augment the training split (``cfg.train.augment``, seeded by ``cfg.seed``; validation is never
    touched), then truncate, fit the vocabulary on train only, de-duplicate and encode both splits."""
    train = augment(train, cfg.train.augment, seed=cfg.seed)
    return encode_splits(train, val, cfg.data.max_len, cfg.data.truncate, cfg.train.dedup)
