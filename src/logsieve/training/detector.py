"""Detector: the scikit-learn-style estimator behind `train`, `evaluate` and `study`.

It owns what is learned from the training split (augmentation statistics, vocabulary, weights) and
the decision threshold (tuned on validation only). Scoring works per distinct sequence and maps back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import torch

from logsieve.config import RunConfig
from logsieve.errors import LogsieveError
from logsieve.evaluation.metrics import best_threshold
from logsieve.features.augment import augment
from logsieve.features.encoding import encode_rows, encode_splits, truncate
from logsieve.features.vocabulary import Vocabulary
from logsieve.models.rnn import RNNClassifier
from logsieve.training.trainer import Trainer, predict_scores

WEIGHTS, STATE = "model.pt", "detector.json"


class Detector:
    """Fit on (train, val) session tables; score any session table."""

    def __init__(self, config: RunConfig, progress: bool = True) -> None:
        self.config = config
        self.progress = progress

    # --- fitting -------------------------------------------------------------------------------
    def fit(self, train: pl.DataFrame, val: pl.DataFrame, on_epoch: Callable | None = None) -> Detector:
        """Learn from ``train`` only; ``val`` drives early stopping and the threshold."""
        cfg = self.config
        start = time.perf_counter()
        train = augment(train, cfg.train.augment, seed=cfg.seed)
        self.n_train_sessions_ = train.height
        sets = encode_splits(train, val, cfg.data.max_len, cfg.data.truncate, cfg.train.dedup)
        self.vocab_, self.n_train_rows_, self.truncated_ = sets.vocab, sets.train_rows, sets.truncated
        train_set, val_set = sets.train, sets.val
        torch.manual_seed(cfg.seed)
        self.model_ = RNNClassifier(len(self.vocab_), cfg.model)
        trainer = Trainer(cfg.train, seed=cfg.seed, progress=self.progress)
        trainer.fit(self.model_, train_set, val_set, on_epoch)
        self.history_ = trainer.history_
        self.best_epoch_ = trainer.best_epoch_
        scores = predict_scores(self.model_, val_set)
        if cfg.train.threshold == "tuned":
            self.threshold_ = best_threshold(val_set.labels.numpy(), scores, val_set.counts.numpy())
        else:
            self.threshold_ = 0.5
        self.fit_seconds_ = time.perf_counter() - start
        return self

    # --- scoring -------------------------------------------------------------------------------
    def score(self, df: pl.DataFrame) -> np.ndarray:
        """Anomaly probability per session, in the order of ``df``."""
        self._check_fitted()
        events, _ = truncate(df["events"], self.config.data.max_len, self.config.data.truncate)
        keys = events.list.join(" ")
        distinct = pl.DataFrame({"key": keys, "events": events}).unique("key", maintain_order=True)
        scores = predict_scores(self.model_, encode_rows(self.vocab_, distinct.with_columns(label=pl.lit(0))))
        lookup = pl.DataFrame({"key": distinct["key"], "score": scores})
        return pl.DataFrame({"key": keys}).join(lookup, on="key", how="left", maintain_order="left")["score"].to_numpy()

    def predict(self, df: pl.DataFrame) -> np.ndarray:
        return (self.score(df) >= self.threshold_).astype(np.int8)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise LogsieveError("detector is not fitted: call fit() or Detector.load(run_dir)")

    # --- persistence (no pickle: JSON state + a state dict loadable with weights_only=True) ------
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        torch.save(self.model_.state_dict(), directory / WEIGHTS)
        state = {
            "config": self.config.model_dump(mode="json"),
            "vocabulary": self.vocab_.to_dict(),
            "threshold": self.threshold_,
            "best_epoch": self.best_epoch_,
        }
        (directory / STATE).write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> Detector:
        directory = Path(directory)
        if not (directory / STATE).exists() or not (directory / WEIGHTS).exists():
            raise LogsieveError(f"{directory}: not a logsieve run directory (needs {STATE} and {WEIGHTS})")
        state = json.loads((directory / STATE).read_text())
        det = cls(RunConfig.model_validate(state["config"]), progress=False)
        det.vocab_ = Vocabulary.from_dict(state["vocabulary"])
        det.threshold_ = float(state["threshold"])
        det.best_epoch_ = state.get("best_epoch")
        det.model_ = RNNClassifier(len(det.vocab_), det.config.model)
        det.model_.load_state_dict(torch.load(directory / WEIGHTS, weights_only=True))
        det.model_.eval()
        return det
