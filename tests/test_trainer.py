"""Trainer: clipping really bounds the gradient, training is deterministic, early stopping works."""

from __future__ import annotations

import pytest
import torch

from logsieve.config import ModelConfig, TrainConfig
from logsieve.data.splits import split_sessions
from logsieve.features.encoding import collapse, encode_rows
from logsieve.features.vocabulary import Vocabulary
from logsieve.models.rnn import RNNClassifier
from logsieve.training.trainer import Trainer, clip_gradients


def big_gradient_model() -> tuple[torch.nn.Module, float]:
    torch.manual_seed(0)
    model = RNNClassifier(10, ModelConfig(cell="rnn", embed_dim=4, hidden_size=8))
    tokens, lengths = torch.randint(2, 10, (16, 12)), torch.full((16,), 12)
    (model(tokens, lengths) * 100).sum().backward()  # a deliberately huge gradient
    norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])))
    return model, norm


def test_clip_by_value_bounds_every_component():
    model, norm = big_gradient_model()
    assert max(p.grad.abs().max().item() for p in model.parameters()) > 0.01
    assert clip_gradients(model, "value", 0.01) == pytest.approx(norm)
    assert max(p.grad.abs().max().item() for p in model.parameters()) <= 0.01 + 1e-9


def test_clip_by_norm_bounds_the_global_norm():
    model, norm = big_gradient_model()
    assert norm > 0.5
    clip_gradients(model, "norm", 0.5)
    after = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])))
    assert after == pytest.approx(0.5, rel=1e-4)


def test_no_clipping_leaves_gradients_alone():
    model, norm = big_gradient_model()
    clip_gradients(model, "none", 0.01)
    after = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])))
    assert after == pytest.approx(norm)


def _fit(simulated, **train_kw):
    train, val, _ = split_sessions(simulated, seed=0)
    vocab = Vocabulary().fit(train["events"])
    tr, va = encode_rows(vocab, collapse(train)), encode_rows(vocab, collapse(val))
    torch.manual_seed(0)
    model = RNNClassifier(len(vocab), ModelConfig(cell="gru", embed_dim=8, hidden_size=16, pooling="max"))
    train_kw = {"epochs": 6, "batch_size": 32, "lr": 1e-2, "class_weight": "balanced", **train_kw}
    cfg = TrainConfig(**train_kw)
    trainer = Trainer(cfg, seed=0, progress=False).fit(model, tr, va)
    return model, trainer


def test_training_is_deterministic_and_learns(simulated):
    m1, t1 = _fit(simulated, clip="norm", clip_threshold=1.0)
    m2, t2 = _fit(simulated, clip="norm", clip_threshold=1.0)
    assert [r.train_loss for r in t1.history_] == [r.train_loss for r in t2.history_]
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert t1.history_[-1].train_loss < t1.history_[0].train_loss
    assert max(r.val_f1 for r in t1.history_) > 0.8


def test_early_stopping_stops_and_keeps_the_best_epoch(simulated):
    _, trainer = _fit(simulated, epochs=30, patience=2, lr=0.05)
    assert len(trainer.history_) < 30
    best = max(trainer.history_, key=lambda r: (round(r.val_f1, 6), -r.val_loss))
    assert trainer.best_epoch_ == best.epoch


def test_cosine_schedule_decays_the_learning_rate_to_zero(simulated):
    model, trainer = _fit(simulated, epochs=3, patience=3, schedule="cosine")
    constant_model, _ = _fit(simulated, epochs=3, patience=3)
    assert len(trainer.history_) == 3
    assert not all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), constant_model.state_dict().values()))
    assert trainer.final_lr_ == pytest.approx(0.0, abs=1e-9)
