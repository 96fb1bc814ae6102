"""The study page's figures, each returned as PNG bytes (the page embeds them: one file, nothing to fetch).

Every figure shows, per model, the run with the best validation F1 (``StudyFiles.best_runs``), except the
training curves, which show every clean RNN run so the spread over seeds stays visible.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve  # noqa: E402

from logsieve.evaluation.scores import read_scores  # noqa: E402
from logsieve.evaluation.study_files import FAMILIES, Run  # noqa: E402

DPI = 100
WIDTH = 13.6  # inches at DPI: the page's content width (1360 px)


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG (no timestamp in it, so the same study gives the same bytes), then closed."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(fig)
    return buffer.getvalue()


def family_of(kind: str) -> str:
    return FAMILIES.get(kind, f"{kind} models")


def pr_curves(best: dict[str, Run]) -> tuple[bytes | None, list[str]]:
    """Precision against recall on the test split, one panel per model family; a dot marks the run's own
    threshold. When the operating points sit high (HDFS: ~0.99), a second row zooms into the upper right
    corner where the models differ. Returns the PNG (None when no run stored scores) and the models without."""
    curves: dict[str, list[Curve]] = {}
    missing = []
    for name, run in best.items():
        scores = read_scores(run.directory)
        if scores is None or scores["label"].n_unique() < 2:
            missing.append(name)
            continue
        y, s = scores["label"].to_numpy(), scores["score"].to_numpy()
        precision, recall, _ = precision_recall_curve(y, s)
        m = run.metrics or {}
        point = (m["recall"], m["precision"]) if "recall" in m and "precision" in m else None
        curves.setdefault(family_of(run.kind), []).append(
            Curve(name, precision, recall, average_precision_score(y, s), point)
        )
    if not curves:
        return None, missing
    lows = [_zoom_low(items) for items in curves.values()]
    zoom = max(lows) >= 0.5
    fig, axes = plt.subplots(2 if zoom else 1, len(curves), figsize=(WIDTH, 9.6 if zoom else 5.0), squeeze=False)
    for i, (family, items) in enumerate(curves.items()):
        _draw_pr(axes[0][i], family, items, 0.0, legend=True)
        if zoom and lows[i] >= 0.5:
            _draw_pr(axes[1][i], f"{family}: zoom", items, lows[i], legend=False)
        elif zoom:
            axes[1][i].axis("off")
    fig.tight_layout()
    return png_bytes(fig), missing


class Curve(NamedTuple):
    name: str
    precision: np.ndarray
    recall: np.ndarray
    ap: float
    point: tuple[float, float] | None  # (recall, precision) at the run's threshold


def _zoom_low(items: list[Curve]) -> float:
    """Lower axis limit that still shows every operating point of a panel, on a 0.05 grid."""
    points = [min(c.point) for c in items if c.point is not None]
    return max(0.0, math.floor((min(points, default=0.0) - 0.03) * 20) / 20)


def _draw_pr(ax: Axes, title: str, items: list[Curve], low: float, legend: bool) -> None:
    items = sorted(items, key=lambda c: -c.ap)
    for curve, color in zip(items, _colors(len(items)), strict=True):
        ax.step(curve.recall, curve.precision, where="post", color=color, lw=1.4,
                label=f"{curve.name} (AP {curve.ap:.4f})")  # fmt: skip
        if curve.point is not None:
            ax.plot(*curve.point, "o", color=color, ms=5, mec="black", mew=0.6)
    pad = 0.01 * (1 - low)
    ax.set(xlim=(low - pad, 1 + pad), ylim=(low - pad, 1 + 2 * pad), xlabel="recall", ylabel="precision", title=title)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="lower left", fontsize=8, framealpha=0.85)


def confusion_grid(best: dict[str, Run], columns: int = 6) -> bytes | None:
    """Small multiples of the test confusion matrix, rows = true class, columns = predicted; colour on a log
    scale (the normal class outnumbers anomalies ~30:1), so that FP and FN cells stay visible."""
    items = [
        (name, run.metrics["confusion"]) for name, run in best.items() if run.metrics and "confusion" in run.metrics
    ]
    if not items:
        return None
    cols = min(columns, len(items))
    rows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH * cols / columns, 2.35 * rows), squeeze=False)
    for ax, (name, cm) in zip(axes.flat, items, strict=False):
        counts = np.asarray(cm, dtype=float)
        ax.imshow(np.log10(counts + 1), cmap="Blues", vmin=0, vmax=max(np.log10(counts.max() + 1), 1))
        for (i, j), value in np.ndenumerate(counts):
            dark = np.log10(value + 1) > 0.6 * np.log10(counts.max() + 1)
            tag = (("TN", "FP"), ("FN", "TP"))[i][j]
            ax.text(j, i, f"{tag}\n{value:,.0f}", ha="center", va="center", fontsize=8.5,
                    color="white" if dark else "black")  # fmt: skip
        ax.set_xticks([0, 1], ["normal", "anomaly"], fontsize=7.5)
        ax.set_yticks([0, 1], ["normal", "anomaly"], fontsize=7.5, rotation=90, va="center")
        ax.set_title(name, fontsize=9.5)
    for ax in axes.flat[len(items) :]:
        ax.axis("off")
    fig.supxlabel("predicted", fontsize=9)
    fig.supylabel("true", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def training_curves(runs: Sequence[Run], per_row: int = 2) -> bytes | None:
    """Per RNN preset: train (dashed) and validation (solid) loss, and validation F1 with the kept epoch
    marked, one line per run (seed, and split when there are several)."""
    by_preset: dict[str, list[tuple[Run, pl.DataFrame]]] = {}
    for run in runs:
        path = run.directory / "history.csv"
        if run.kind != "rnn" or not path.is_file():
            continue
        try:
            history = pl.read_csv(path)
        except (OSError, pl.exceptions.PolarsError):
            continue
        if {"epoch", "train_loss", "val_loss", "val_f1"} <= set(history.columns) and history.height:
            by_preset.setdefault(run.name, []).append((run, history))
    if not by_preset:
        return None
    rows = math.ceil(len(by_preset) / per_row)
    fig, axes = plt.subplots(rows, 2 * per_row, figsize=(WIDTH, 2.9 * rows), squeeze=False)
    for i, (preset, items) in enumerate(by_preset.items()):
        ax_loss, ax_f1 = axes[i // per_row][2 * (i % per_row)], axes[i // per_row][2 * (i % per_row) + 1]
        _curves(ax_loss, ax_f1, preset, items)
    for ax in axes.flat[2 * len(by_preset) :]:
        ax.axis("off")
    fig.tight_layout()
    return png_bytes(fig)


def _curves(ax_loss: Axes, ax_f1: Axes, preset: str, items: list[tuple[Run, pl.DataFrame]]) -> None:
    colors = _colors(len(items))
    for (run, history), color in zip(items, colors, strict=True):
        label = f"seed {run.seed}" if run.split is None else f"split {run.split} seed {run.seed}"
        epoch = history["epoch"].to_numpy()
        ax_loss.plot(epoch, history["train_loss"].to_numpy(), "--", color=color, lw=1.1, alpha=0.8)
        ax_loss.plot(epoch, history["val_loss"].to_numpy(), "-", color=color, lw=1.4, label=label)
        f1 = history["val_f1"].to_numpy()
        ax_f1.plot(epoch, f1, "-", color=color, lw=1.4)
        best = (run.metrics or {}).get("best_epoch")
        if isinstance(best, int) and 1 <= best <= len(f1) and epoch[best - 1] == best:
            ax_f1.plot(best, f1[best - 1], "o", color=color, ms=5, mec="black", mew=0.6)
    positive = all((h["train_loss"] > 0).all() and (h["val_loss"] > 0).all() for _, h in items)
    ax_loss.set(xlabel="epoch", ylabel="loss (val —, train --)", title=f"{preset}: loss",
                yscale="log" if positive else "linear")  # fmt: skip
    ax_f1.set(xlabel="epoch", ylabel="F1", title=f"{preset}: validation F1")
    for ax in (ax_loss, ax_f1):
        ax.grid(alpha=0.3)
        ax.title.set_fontsize(10)
    if len(items) <= 6:
        ax_loss.legend(fontsize=7.5, loc="upper right")


def _colors(n: int) -> list[tuple[float, float, float, float]]:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]
