"""Detector: the scikit-learn-style estimator behind `train`, `evaluate` and `study`.

It owns what is learned from the training split (augmentation statistics, vocabulary, weights) and
the decision threshold (tuned on validation only). Scoring works per distinct sequence and maps back.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
import torch

from logsieve.artifacts import atomic_file, read_json, write_json
from logsieve.config import RunConfig, load_run_config
from logsieve.errors import LogsieveError
from logsieve.evaluation.metrics import best_threshold
from logsieve.features.encoding import encode_rows, truncate
from logsieve.features.prepare import prepare_training_data
from logsieve.features.vocabulary import Vocabulary
from logsieve.models.rnn import RNNClassifier
from logsieve.table import sequence_keys
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
        sets = prepare_training_data(train, val, cfg)  # the same rows a search trial of this config sees
        self.n_train_sessions_ = sets.train_sessions
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
        keys = sequence_keys(events)
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
        """Each file is written atomically; ``train_run`` also writes the whole directory atomically."""
        self._check_fitted()
        directory = Path(directory)
        with atomic_file(directory / WEIGHTS) as tmp:
            torch.save(self.model_.state_dict(), tmp)
        state = {
            "config": self.config.model_dump(mode="json"),
            "vocabulary": self.vocab_.to_dict(),
            "threshold": self.threshold_,
            "best_epoch": self.best_epoch_,
        }
        write_json(directory / STATE, state)

    @classmethod
    def load(cls, directory: str | Path) -> Detector:
        """Rebuild a saved detector; a missing, damaged or mismatched file is one LogsieveError line."""
        directory = Path(directory)
        if not directory.is_dir():
            raise LogsieveError(f"{directory}: not a logsieve run directory (no such folder)")
        missing = [name for name in (STATE, WEIGHTS) if not (directory / name).is_file()]
        if missing:
            raise LogsieveError(f"{directory}: not a logsieve run directory (missing {' and '.join(missing)})")
        config = load_run_config(directory / STATE)
        state = read_json(directory / STATE, "detector state")
        events = state.get("vocabulary", {}).get("events") if isinstance(state.get("vocabulary"), dict) else None
        threshold = state.get("threshold")
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise LogsieveError(f"{directory / STATE}: detector state is damaged (no vocabulary.events list)")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise LogsieveError(f"{directory / STATE}: detector state is damaged (threshold must be in [0, 1])")
        try:
            weights = torch.load(directory / WEIGHTS, weights_only=True)
        except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            why = type(exc).__name__
            raise LogsieveError(f"{directory / WEIGHTS}: damaged (not a saved state dict: {why})") from None
        det = cls.from_state(config, events, float(threshold), weights, where=directory / WEIGHTS, described_by=STATE)
        det.best_epoch_ = state.get("best_epoch")
        return det

    @classmethod
    def from_state(
        cls,
        config: RunConfig,
        events: Sequence[str],
        threshold: float,
        weights: Mapping[str, torch.Tensor],
        where: object = "weights",
        described_by: str = "its config",
    ) -> Detector:
        """A fitted detector from its parts, however they were stored (a run directory, a bundle's manifest and
        safetensors): weights that do not fit the model ``described_by`` describes are one LogsieveError line."""
        det = cls(config, progress=False)
        det.vocab_ = Vocabulary.from_dict({"events": list(events)})
        det.threshold_ = float(threshold)
        det.model_ = RNNClassifier(len(det.vocab_), config.model)
        try:
            det.model_.load_state_dict(weights)
        except (RuntimeError, TypeError, KeyError, AttributeError, ValueError) as exc:
            why = " ".join(str(exc).split())[:240]
            raise LogsieveError(f"{where}: does not fit the model {described_by} describes ({why})") from None
        det.model_.eval()
        return det
