"""Trainer: clipping really bounds the gradient, training is deterministic, early stopping restores the weights
of the epoch the one best-epoch rule (``epoch_rank``) picks."""

from __future__ import annotations

import pytest
import torch

from logsieve.config import ModelConfig, TrainConfig
from logsieve.data.splits import split_sessions
from logsieve.features.encoding import collapse, encode_rows
from logsieve.features.vocabulary import Vocabulary
from logsieve.models.rnn import RNNClassifier
from logsieve.training import trainer as trainer_module
from logsieve.training.trainer import EpochRecord, Trainer, best_record, clip_gradients, epoch_rank


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


def _fit(simulated, on_epoch=None, **train_kw):
    """Train a small GRU; ``on_epoch(model, record)`` sees the model as each epoch leaves it."""
    train, val, _ = split_sessions(simulated, seed=0)
    vocab = Vocabulary().fit(train["events"])
    tr, va = encode_rows(vocab, collapse(train)), encode_rows(vocab, collapse(val))
    torch.manual_seed(0)
    model = RNNClassifier(len(vocab), ModelConfig(cell="gru", embed_dim=8, hidden_size=16, pooling="max"))
    train_kw = {"epochs": 6, "batch_size": 32, "lr": 1e-2, "class_weight": "balanced", **train_kw}
    cfg = TrainConfig(**train_kw)
    callback = None if on_epoch is None else (lambda record: on_epoch(model, record))
    trainer = Trainer(cfg, seed=0, progress=False).fit(model, tr, va, callback)
    return model, trainer


def _snapshots(simulated, **train_kw):
    """Fit while keeping a copy of the weights at the end of every epoch: {epoch: state_dict}."""
    weights: dict[int, dict[str, torch.Tensor]] = {}

    def keep(model, record):
        weights[record.epoch] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    model, trainer = _fit(simulated, on_epoch=keep, **train_kw)
    return model, trainer, weights


def same_weights(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    final = model.state_dict()
    return final.keys() == state.keys() and all(torch.equal(final[k], state[k]) for k in state)


def test_training_is_deterministic_and_learns(simulated):
    m1, t1 = _fit(simulated, clip="norm", clip_threshold=1.0)
    m2, t2 = _fit(simulated, clip="norm", clip_threshold=1.0)
    assert [r.train_loss for r in t1.history_] == [r.train_loss for r in t2.history_]
    assert same_weights(m1, m2.state_dict())
    assert t1.history_[-1].train_loss < t1.history_[0].train_loss
    assert max(r.val_f1 for r in t1.history_) > 0.8


def record(epoch: int, val_f1: float, val_loss: float) -> EpochRecord:
    return EpochRecord(epoch, 0.0, val_loss, val_f1, 0.5, 0.0, 0.0)


def test_epoch_rank_prefers_f1_then_lower_loss_then_the_earlier_epoch():
    assert epoch_rank(0.9, 0.5) > epoch_rank(0.8, 0.01)  # F1 first, whatever the loss
    assert epoch_rank(0.9, 0.1) > epoch_rank(0.9, 0.2)  # equal F1: lower loss wins
    assert epoch_rank(0.9 + 1e-9, 0.2) < epoch_rank(0.9, 0.1)  # float noise in F1 is no gain
    history = [record(1, 0.5, 0.3), record(2, 0.9, 0.2), record(3, 0.9 + 1e-9, 0.2), record(4, 0.9, 0.25)]
    assert best_record(history).epoch == 2  # of equal ranks the earliest stays best


def test_early_stopping_restores_the_best_epochs_weights(simulated):
    model, trainer, weights = _snapshots(simulated, epochs=30, patience=2, lr=0.05)
    history = trainer.history_
    assert len(history) < 30  # it stopped early ...
    best = best_record(history)
    assert trainer.best_epoch_ == best.epoch
    assert [r.epoch for r in history[best.epoch :]] == list(range(best.epoch + 1, best.epoch + 3))  # ... patience later
    assert all(epoch_rank(r.val_f1, r.val_loss) <= epoch_rank(best.val_f1, best.val_loss) for r in history)
    assert same_weights(model, weights[best.epoch])  # the model left by fit IS the best epoch's
    assert not same_weights(model, weights[history[-1].epoch])  # not merely the last epoch's


def test_the_trainer_asks_epoch_rank_which_epoch_is_best(simulated, monkeypatch):
    """Swap the rule for 'lowest F1 wins': early stopping and the restored weights must follow it."""
    monkeypatch.setattr(trainer_module, "epoch_rank", lambda val_f1, val_loss: (-round(val_f1, 6), val_loss))
    model, trainer, weights = _snapshots(simulated, epochs=8, patience=8, lr=0.05)
    worst = min(trainer.history_, key=lambda r: (round(r.val_f1, 6), -r.val_loss))
    assert worst.val_f1 < max(r.val_f1 for r in trainer.history_)  # the two rules disagree here
    assert trainer.best_epoch_ == worst.epoch
    assert same_weights(model, weights[worst.epoch])


def test_cosine_schedule_decays_the_learning_rate_to_zero(simulated):
    model, trainer = _fit(simulated, epochs=3, patience=3, schedule="cosine")
    constant_model, _ = _fit(simulated, epochs=3, patience=3)
    assert len(trainer.history_) == 3
    assert not same_weights(model, constant_model.state_dict())
    assert trainer.final_lr_ == pytest.approx(0.0, abs=1e-9)
