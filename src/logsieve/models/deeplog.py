"""DeepLog (Du et al., CCS'17): an LSTM that predicts a session's next event from the previous h events; a
session is anomalous when some event it logs is not among the model's top-g predictions.

Setting: the LSTM and its vocabulary learn from the NORMAL training sessions only (label 0, DeepLog's
"normal execution" log); anomalous training sessions are never read. Labels are otherwise used only to
choose g on validation (best F1, then the smaller g), unless ``top_g`` fixes it. Early stopping watches the
next-event loss of the normal validation sessions. Choices beyond the paper: each session is START-padded,
so its first events and sessions shorter than h are predicted too, and it ends with an END target (one more
prediction per session), so a session that stops early is a surprise as well. Both pay on the public HDFS
sample (mean validation F1 of seeds 0-2, split seed 0, ``batches="sample"``): 0.87 with both, 0.80 without
END, 0.69 without padding (the first h events of a session are then never checked); h = 5 gave 0.82.

Score: r = rank (0 = the top prediction) of the event actually logged, among the V classes (known events
+ END); an event never seen in normal training ranks V, worse than any. The session score is max r / V,
so predicting ``score >= threshold_`` with ``threshold_ = g / V`` is exactly DeepLog's "max r >= g".
Speed: training uses distinct (window, next event) pairs with their counts as loss weights (the same loss
as over every pair of every session; ~15k distinct pairs stand for ~1.3M) and scoring ranks each distinct
window once. Persistence: safetensors weights plus JSON, no pickle.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
import torch
from pydantic import Field, ValidationError
from torch import nn

from logsieve.artifacts import atomic_file, read_json, write_json
from logsieve.config import Frozen, validation_summary
from logsieve.errors import LogsieveError
from logsieve.features.next_event import distinct_sequences, merge_pairs, next_event_pairs
from logsieve.features.vocabulary import PAD, UNK, Vocabulary
from logsieve.models.seeding import seed_everything

WEIGHTS, STATE = "model.safetensors", "deeplog.json"
START = END = PAD  # input slot before a session's first event; output class "the session ends here"
SCORE_BATCH = 4096


class DeepLogParams(Frozen):
    """DeepLog's hyper-parameters (paper defaults for HDFS: h = 10, g = 9, 2 layers of 64)."""

    window: int = Field(10, ge=1, le=1000)  # h: previous events the LSTM sees
    top_g: int | None = Field(None, ge=1)  # None: choose g on validation
    hidden: int = Field(64, ge=1)
    layers: int = Field(2, ge=1)
    embed: int | None = Field(None, ge=1)  # None: one-hot inputs, as in the paper
    end: bool = True  # also predict the end of each session
    epochs: int = Field(15, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(3e-3, gt=0)
    patience: int = Field(3, ge=1)
    # "shuffle": every distinct pair once per epoch, loss = count-weighted mean per batch (as the RNN trainer).
    # "sample": batches drawn with replacement in proportion to the counts, plain mean: unbiased SGD on the
    # per-session loss, which it fits better (validation loss 0.30 vs 0.50-0.71) but not into a better
    # detector (validation F1 0.82 / 0.88 / 0.91 vs 0.93 / 0.84 / 0.90, seeds 0-2, 15 epochs)
    batches: Literal["shuffle", "sample"] = "shuffle"


class NextEventLSTM(nn.Module):
    """Window of token ids (batch, h) -> next-token logits (batch, n_tokens); ``masked`` classes never win."""

    def __init__(self, n_tokens: int, p: DeepLogParams) -> None:
        super().__init__()
        self.n_tokens = n_tokens
        self.embed = nn.Embedding(n_tokens, p.embed) if p.embed else None
        self.lstm = nn.LSTM(p.embed or n_tokens, p.hidden, p.layers, batch_first=True)
        self.out = nn.Linear(p.hidden, n_tokens)
        masked = torch.zeros(n_tokens, dtype=torch.bool)
        masked[UNK] = True  # never a target: unseen events get the worst rank by rule, not by the model
        masked[END] = not p.end
        self.register_buffer("masked", masked, persistent=False)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        x = self.embed(windows) if self.embed is not None else nn.functional.one_hot(windows, self.n_tokens).float()
        hidden, _ = self.lstm(x)
        return self.out(hidden[:, -1]).masked_fill(self.masked, float("-inf"))


class DeepLog:
    """DeepLog as a logsieve detector: fit(train, val) -> self, score in [0, 1], threshold_ = g / V."""

    kind: ClassVar[str] = "deeplog"

    def __init__(
        self,
        seed: int = 0,
        window: int = 10,
        top_g: int | None = None,
        hidden: int = 64,
        layers: int = 2,
        embed: int | None = None,
        end: bool = True,
        epochs: int = 15,
        batch_size: int = 256,
        lr: float = 3e-3,
        patience: int = 3,
        batches: Literal["shuffle", "sample"] = "shuffle",
    ) -> None:
        self.seed, self.window, self.top_g, self.hidden, self.layers = seed, window, top_g, hidden, layers
        self.embed, self.end, self.epochs, self.batch_size, self.lr = embed, end, epochs, batch_size, lr
        self.patience, self.batches = patience, batches

    def params(self) -> DeepLogParams:
        names = DeepLogParams.model_fields
        try:
            return DeepLogParams(**{k: getattr(self, k) for k in names})
        except ValidationError as exc:
            raise LogsieveError(f"DeepLog: bad hyper-parameters ({validation_summary(exc)})") from None

    # --- fitting ----------------------------------------------------------------------------------
    def fit(self, train: pl.DataFrame, val: pl.DataFrame) -> DeepLog:
        """Learn from the normal training sessions; early-stop on, and choose g with, the validation split."""
        start = time.perf_counter()
        p = self.params()
        normal = train.filter(pl.col("label") == 0)
        if normal.height == 0:
            raise LogsieveError("DeepLog learns from normal sessions, and the training split has none (label 0)")
        with _one_thread():
            self._fit(p, normal, val)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _fit(self, p: DeepLogParams, normal: pl.DataFrame, val: pl.DataFrame) -> None:
        gen = seed_everything(self.seed)
        self.vocab_ = Vocabulary().fit(normal["events"])
        x, y, w = self._pairs(normal["events"])
        vx, vy, vw = self._pairs(val.filter(pl.col("label") == 0)["events"])
        seen = vy != UNK  # a validation event never seen in training has no class to predict
        vx, vy, vw = vx[seen], vy[seen], vw[seen]
        self.model_ = NextEventLSTM(len(self.vocab_), p)
        self.n_pairs_, self.n_train_sessions_ = len(y), normal.height
        self._train(p, (x, y, w), (vx, vy, vw), gen)
        self.g_ = min(p.top_g, self.n_classes_) if p.top_g is not None else self._choose_g(val)
        self.threshold_ = self.g_ / self.n_classes_

    def _pairs(self, events: pl.Series) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Distinct (window, next event) pairs of ``events`` with how many sessions' pairs each stands for."""
        sequences, counts, _ = distinct_sequences(self.vocab_.encode(events))
        pairs = next_event_pairs(sequences, self.window, START, END if self.end else None)
        windows, targets, weights = merge_pairs(pairs, counts)
        return torch.from_numpy(windows), torch.from_numpy(targets), torch.from_numpy(weights).float()

    def _train(self, p: DeepLogParams, train: tuple[torch.Tensor, ...], val: tuple[torch.Tensor, ...], gen) -> None:
        """Adam on the count-weighted cross entropy; keeps the epoch with the lowest validation loss."""
        model, (x, y, w) = self.model_, train
        optimizer = torch.optim.Adam(model.parameters(), lr=p.lr)
        best, best_state, stale, self.history_ = float("inf"), copy.deepcopy(model.state_dict()), 0, []
        for epoch in range(1, p.epochs + 1):
            model.train()
            total, seen = 0.0, 0.0
            if p.batches == "sample":
                order = torch.multinomial(w / w.sum(), len(y), replacement=True, generator=gen)
            else:
                order = torch.randperm(len(y), generator=gen)
            for idx in order.split(p.batch_size):
                weight = torch.ones(len(idx)) if p.batches == "sample" else w[idx]
                loss = weighted_cross_entropy(model(x[idx]), y[idx], weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, seen = total + float(loss.detach()) * float(weight.sum()), seen + float(weight.sum())
            val_loss = self._loss(*val)
            self.history_.append({"epoch": epoch, "train_loss": total / seen, "val_loss": val_loss})
            if val_loss < best - 1e-6:
                best, best_state, stale, self.best_epoch_ = val_loss, copy.deepcopy(model.state_dict()), 0, epoch
            else:
                stale += 1
                if stale >= p.patience:
                    break
        model.load_state_dict(best_state)
        model.eval()

    @torch.no_grad()
    def _loss(self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> float:
        """Count-weighted next-event cross entropy over all of ``x`` (0 when empty)."""
        if len(y) == 0:
            return 0.0
        self.model_.eval()
        total = sum(
            float(weighted_cross_entropy(self.model_(x[i]), y[i], w[i]) * w[i].sum())
            for i in torch.arange(len(y)).split(SCORE_BATCH)
        )
        return total / float(w.sum())

    def _choose_g(self, val: pl.DataFrame) -> int:
        """The g with the best validation F1 (then the smaller g). Without validation anomalies: the smallest
        g that flags no validation session, i.e. no false alarm."""
        ranks = np.rint(self._score(val) * self.n_classes_).astype(np.int64)
        y = val["label"].to_numpy() == 1
        if not y.any():
            return int(min(self.n_classes_, ranks.max(initial=0) + 1))
        gs = np.arange(1, self.n_classes_ + 1)
        flagged = ranks[None, :] >= gs[:, None]  # (g, session)
        tp = (flagged & y).sum(1)
        f1 = 2 * tp / (flagged.sum(1) + y.sum())
        return int(gs[np.flatnonzero(f1 >= f1.max() - 1e-12)[0]])

    # --- scoring ----------------------------------------------------------------------------------
    @property
    def n_classes_(self) -> int:
        """V: the classes a logged event can be ranked among (known events, plus END when predicted)."""
        return len(self.vocab_) - 1 - int(not self.end)

    def score(self, df: pl.DataFrame) -> np.ndarray:
        """max rank / V per session, in [0, 1]; 1 exactly when an event was never seen in normal training."""
        with _one_thread():
            return self._score(df)

    def _score(self, df: pl.DataFrame) -> np.ndarray:
        if df.height == 0:
            return np.zeros(0)
        sequences, _, inverse = distinct_sequences(self.vocab_.encode(df["events"].cast(pl.List(pl.String))))
        pairs = next_event_pairs(sequences, self.window, START, END if self.end else None)
        windows, where = np.unique(pairs.windows, axis=0, return_inverse=True)
        ranks = self._rank_table(windows)[where.reshape(-1), pairs.targets]
        ranks = np.where(pairs.targets == UNK, self.n_classes_, ranks)
        worst = np.zeros(len(sequences), dtype=np.int64)
        np.maximum.at(worst, pairs.owner, ranks)
        return worst[inverse] / self.n_classes_

    @torch.no_grad()
    def _rank_table(self, windows: np.ndarray) -> np.ndarray:
        """(window, class) -> how many classes the model ranks strictly above that class after that window."""
        self.model_.eval()
        out = np.empty((len(windows), len(self.vocab_)), dtype=np.int64)
        for idx in torch.arange(len(windows)).split(SCORE_BATCH):
            logits = self.model_(torch.from_numpy(windows[idx.numpy()]))
            out[idx.numpy()] = (logits[:, None, :] > logits[:, :, None]).sum(-1).numpy()
        return out

    def predict(self, df: pl.DataFrame) -> np.ndarray:
        return (self.score(df) >= self.threshold_).astype(np.int8)

    def n_parameters(self) -> int:
        return int(sum(p.numel() for p in self.model_.parameters()))

    def get_config(self) -> dict[str, Any]:
        """Hyper-parameters, seed and (once fitted) the g in use."""
        fitted = {"g": self.g_, "classes": self.n_classes_} if hasattr(self, "g_") else {}
        return {"model": self.kind, "seed": self.seed, **self.params().model_dump(), **fitted}

    # --- persistence (safetensors + JSON, no pickle) -----------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write ``model.safetensors`` and ``deeplog.json`` (vocabulary, g, threshold, hyper-parameters, seed)."""
        if not hasattr(self, "model_"):
            raise LogsieveError("DeepLog is not fitted: call fit() or DeepLog.load(run_dir)")
        from safetensors.torch import save_file

        directory = Path(directory)
        with atomic_file(directory / WEIGHTS) as tmp:
            save_file({k: v.detach().contiguous() for k, v in self.model_.state_dict().items()}, tmp)
        write_json(directory / STATE, {
            "kind": self.kind, "seed": self.seed, "params": self.params().model_dump(), "g": self.g_,
            "threshold": self.threshold_, "vocabulary": self.vocab_.to_dict(),
            "best_epoch": getattr(self, "best_epoch_", None),
        })  # fmt: skip

    @classmethod
    def load(cls, directory: str | Path) -> DeepLog:
        """Read what ``save`` wrote; anything damaged or inconsistent is one LogsieveError line."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / STATE).is_file() or not (directory / WEIGHTS).is_file():
            raise LogsieveError(f"{directory}: not a DeepLog run directory (needs {STATE} and {WEIGHTS})")
        state = read_json(directory / STATE, "DeepLog state")
        damaged = f"{directory / STATE}: DeepLog state is damaged"
        try:
            if state["kind"] != cls.kind or isinstance(state["seed"], bool) or isinstance(state["g"], bool):
                raise ValueError(f"kind {state['kind']!r}")
            p = DeepLogParams.model_validate(state["params"])
            model = cls(seed=int(state["seed"]), **p.model_dump())
            model.vocab_, model.g_ = Vocabulary.from_dict(state["vocabulary"]), int(state["g"])
            threshold = float(state["threshold"])
        except ValidationError as exc:
            raise LogsieveError(f"{damaged} ({validation_summary(exc)})") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LogsieveError(f"{damaged} ({exc!r})") from None
        model.threshold_ = model.g_ / model.n_classes_
        if not 1 <= model.g_ <= model.n_classes_ or threshold != model.threshold_:
            raise LogsieveError(f"{damaged} (g {model.g_} and threshold {threshold} disagree with the vocabulary)")
        model.model_ = NextEventLSTM(len(model.vocab_), p)
        try:
            model.model_.load_state_dict(load_file(directory / WEIGHTS))
        except (SafetensorError, RuntimeError, OSError, ValueError) as exc:
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise LogsieveError(f"{directory / WEIGHTS}: DeepLog weights are damaged ({why})") from None
        model.model_.eval()
        return model


def weighted_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum(w * ce) / sum(w): over distinct pairs with w = count, the plain mean over every session's pairs."""
    losses = nn.functional.cross_entropy(logits, targets, reduction="none")
    return (losses * weights).sum() / weights.sum()


@contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one thread while DeepLog runs: its batches (256 windows of 10 steps through a 64-unit LSTM) are
    too small to split, and on 2 busy cores two OpenMP threads made a training step 20x slower (0.4 s, not 0.02)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
