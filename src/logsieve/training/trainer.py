"""The one training loop. Model-agnostic: any module mapping (tokens, lengths) -> logits trains here.

Loss is the count-weighted mean of per-row BCE, so training on de-duplicated rows optimises exactly the
per-session objective. Gradient clipping is an option (none | value | norm), not a model variant.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from torch import nn

from logsieve.config import TrainConfig
from logsieve.evaluation.metrics import best_threshold, f1_at
from logsieve.features.encoding import EncodedSet
from logsieve.models.seeding import seed_everything


def weighted_bce(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum(w * bce) / sum(w): over de-duplicated rows with w = count this equals the plain mean over
    the duplicated rows (tests/test_encoding.py checks it)."""
    losses = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return (losses * weights).sum() / weights.sum()


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    opt = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return opt(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def clip_gradients(model: nn.Module, mode: str, threshold: float) -> float:
    """Clip in place; returns the gradient's global L2 norm before clipping (for the history)."""
    params = [p for p in model.parameters() if p.grad is not None]
    grads = [g.detach().norm() for p in params if (g := p.grad) is not None]
    norm = float(torch.linalg.vector_norm(torch.stack(grads))) if grads else 0.0
    if mode == "value":
        nn.utils.clip_grad_value_(params, threshold)
    elif mode == "norm":
        nn.utils.clip_grad_norm_(params, threshold)
    return norm


@torch.no_grad()
def predict_scores(model: nn.Module, data: EncodedSet, batch_size: int = 2048) -> np.ndarray:
    """Anomaly probabilities in row order (batches by length for speed, then restored)."""
    model.eval()
    out = np.empty(len(data), dtype=np.float32)
    for idx in data.batches(batch_size, shuffle=False, bucket=True):
        tokens, lengths, _, _ = data.batch(idx)
        out[idx.numpy()] = torch.sigmoid(model(tokens, lengths)).numpy()
    return out


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_f1: float
    val_threshold: float
    grad_norm_max: float
    seconds: float


def epoch_rank(val_f1: float, val_loss: float) -> tuple[float, float]:
    """The one best-epoch rule (early stopping, the restored weights, a search's trials): higher validation F1
    wins, F1 rounded to 6 decimals so float noise is no gain; a tie goes to the lower validation loss.
    Compare ranks with ``>``: of equal ranks, the earliest stays best."""
    return (round(val_f1, 6), -val_loss)


def best_record(history: Sequence[EpochRecord]) -> EpochRecord:
    """The best epoch of a history by ``epoch_rank`` (the first of equals, as in the training loop)."""
    return max(history, key=lambda r: epoch_rank(r.val_f1, r.val_loss))


@dataclass
class Trainer:
    """Fit a model with early stopping; the best epoch (by ``epoch_rank``) is restored at the end."""

    config: TrainConfig
    seed: int = 0
    progress: bool = True
    history_: list[EpochRecord] = field(default_factory=list)

    def fit(
        self,
        model: nn.Module,
        train: EncodedSet,
        val: EncodedSet,
        on_epoch: Callable[[EpochRecord], None] | None = None,
    ) -> Trainer:
        """Train with early stopping; ``on_epoch`` sees every epoch's record (a search prunes from there)."""
        cfg = self.config
        gen = seed_everything(self.seed)
        optimizer = make_optimizer(model, cfg)
        pos_weight = self._class_weights(train)
        steps = cfg.epochs * max(1, -(-len(train) // cfg.batch_size))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if cfg.schedule == "cosine" else None
        best_key: tuple[float, ...] | None = None
        best_state, stale = None, 0
        self.history_ = []
        with self._progress() as bar:
            task = bar.add_task("epoch 1", total=steps)
            for epoch in range(1, cfg.epochs + 1):
                start, losses, weights, grad_max = time.perf_counter(), 0.0, 0.0, 0.0
                model.train()
                for idx in train.batches(cfg.batch_size, shuffle=True, bucket=cfg.bucket, generator=gen):
                    tokens, lengths, labels, counts = train.batch(idx)
                    if len(idx) < 2 and _has_batch_norm(model):
                        continue  # BatchNorm cannot train on a single row
                    w = counts * torch.where(labels > 0.5, pos_weight, 1.0)
                    loss = weighted_bce(model(tokens, lengths), labels, w)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_max = max(grad_max, clip_gradients(model, cfg.clip, cfg.clip_threshold))
                    optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                    losses, weights = losses + loss.item() * float(w.sum()), weights + float(w.sum())
                    bar.advance(task)
                record = self._validate(model, val, epoch, losses / max(weights, 1e-12), grad_max, start)
                self.history_.append(record)
                if on_epoch is not None:
                    on_epoch(record)
                bar.update(task, description=f"epoch {epoch} val F1 {record.val_f1:.4f}")
                key = epoch_rank(record.val_f1, record.val_loss)
                if best_key is None or key > best_key:
                    best_key, best_state, stale = key, copy.deepcopy(model.state_dict()), 0
                else:
                    stale += 1
                    if stale >= cfg.patience:
                        break
        self.final_lr_ = float(optimizer.param_groups[0]["lr"])
        if best_state is not None:
            model.load_state_dict(best_state)
        self.best_epoch_ = best_record(self.history_).epoch
        return self

    def _class_weights(self, train: EncodedSet) -> float:
        if self.config.class_weight == "none":
            return 1.0
        pos = float((train.counts * train.labels).sum())
        neg = float(train.counts.sum()) - pos
        return neg / max(pos, 1.0)

    def _validate(self, model, val: EncodedSet, epoch: int, train_loss: float, grad_max: float, start: float):
        scores = predict_scores(model, val)
        y, w = val.labels.numpy(), val.counts.numpy()
        s = torch.from_numpy(scores).clamp(1e-7, 1 - 1e-7)
        val_loss = float(weighted_bce(torch.logit(s), val.labels, val.counts))
        thr = best_threshold(y, scores, w) if self.config.threshold == "tuned" else 0.5
        return EpochRecord(epoch, train_loss, val_loss, f1_at(y, scores, thr, w), thr, grad_max,
                           time.perf_counter() - start)  # fmt: skip

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            disable=not self.progress, transient=True,
        )  # fmt: skip


def _has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
