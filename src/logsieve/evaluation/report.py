"""Tables and plots: training curves, the study's comparison table (Markdown + CSV), an F1 chart."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from logsieve.artifacts import atomic_file, atomic_write_text  # noqa: E402

TABLE_METRICS = ("accuracy", "precision", "recall", "f1", "pr_auc", "mcc", "f1_unseen")
EXTERNAL_METRICS = ("f1_external", "f1_external_unseen")  # columns only when a study has --test


def history_frame(history: list) -> pl.DataFrame:
    return pl.DataFrame([asdict(r) for r in history])


def save_figure(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Save atomically and close the figure; the format comes from ``path``'s suffix, not the temp name's."""
    try:
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    finally:
        plt.close(fig)
    return Path(path)


def plot_curve(history: pl.DataFrame, path: Path, title: str) -> None:
    """Training/validation loss and validation F1 per epoch."""
    fig, (ax_loss, ax_f1) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_loss.plot(history["epoch"], history["train_loss"], label="train")
    ax_loss.plot(history["epoch"], history["val_loss"], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="weighted BCE", yscale="log", title="loss")
    ax_loss.legend()
    ax_f1.plot(history["epoch"], history["val_f1"], color="tab:green")
    ax_f1.set(xlabel="epoch", ylabel="F1", title="validation F1")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def result_row(name: str, kind: str, seed: int, metrics: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Flatten one run's metrics into a row of results.csv."""
    unseen = metrics.get("unseen") or {}
    (tn, fp), (fn, tp) = metrics["confusion"]
    return {
        "name": name, "kind": kind, "seed": seed,
        **{k: metrics[k] for k in ("accuracy", "precision", "recall", "f1", "pr_auc", "mcc", "threshold")},
        "tn": tn, "fp": fp, "fn": fn, "tp": tp,
        "f1_unseen": unseen.get("f1"), "n_unseen": unseen.get("n"), "n_unseen_anomalies": unseen.get("n_anomalies"),
        "score_seconds": metrics["score_seconds"], **extra, **_external_columns(metrics),
    }  # fmt: skip


def _external_columns(metrics: dict[str, Any]) -> dict[str, Any]:
    """F1 on the --test file, all of it and its sessions unseen in training; nothing without --test."""
    ext = metrics.get("external")
    if ext is None:
        return {}
    return {"f1_external": ext["f1"], "f1_external_unseen": (ext.get("unseen") or {}).get("f1")}


def aggregate(results: pl.DataFrame) -> pl.DataFrame:
    """One row per model: mean and sd over seeds of every metric, sorted by mean F1."""
    aggs = [pl.len().alias("runs")]
    for m in (*TABLE_METRICS, *EXTERNAL_METRICS, "fit_seconds", "params"):
        if m in results.columns:
            aggs += [pl.col(m).mean().alias(f"{m}_mean"), pl.col(m).std().fill_null(0.0).alias(f"{m}_sd")]
    errors = [pl.col(c).mean().alias(f"{c}_mean") for c in ("fp", "fn")]
    return (
        results.group_by("name", "kind", maintain_order=True)
        .agg(*aggs, *errors)
        .sort("f1_mean", descending=True, maintain_order=True)
    )


def _pm(row: dict, metric: str, digits: int = 4) -> str:
    mean, sd = row.get(f"{metric}_mean"), row.get(f"{metric}_sd")
    if mean is None:
        return "–"
    return f"{mean:.{digits}f}" if row["runs"] == 1 else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def markdown_table(summary: pl.DataFrame) -> str:
    head = (
        "| # | model | kind | runs | accuracy | precision | recall | F1 | PR-AUC | MCC | F1 unseen "
        "| FP | FN | fit s | params |"
    )
    external = [m for m in EXTERNAL_METRICS if f"{m}_mean" in summary.columns]
    if external:
        head = head.replace("| FP |", "| F1 external | F1 external unseen | FP |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for i, row in enumerate(summary.iter_rows(named=True), 1):
        cells = [str(i), row["name"], row["kind"], str(row["runs"])]
        cells += [_pm(row, m) for m in (*TABLE_METRICS, *external)]
        cells += [f"{row['fp_mean']:.1f}", f"{row['fn_mean']:.1f}", _pm(row, "fit_seconds", 1)]
        cells += [f"{row['params_mean']:,.0f}" if row.get("params_mean") is not None else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_study(summary: pl.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 0.4 * summary.height + 1.2))
    names = summary["name"].to_list()[::-1]
    ax.barh(names, summary["f1_mean"].to_list()[::-1], xerr=summary["f1_sd"].to_list()[::-1],
            color=["tab:gray" if k != "rnn" else "tab:blue" for k in summary["kind"].to_list()[::-1]])  # fmt: skip
    low = max(0.0, min(summary["f1_mean"].to_list()) - 0.01)
    ax.set(xlim=(low, 1.0), xlabel="F1 on the test split (anomaly = positive)", title="logsieve study")
    fig.tight_layout()
    save_figure(fig, path)


def write_study_report(results: pl.DataFrame, out: Path, header: str, footer: str = "") -> pl.DataFrame:
    """results.csv (one row per run), results.md (one row per model, mean ± sd, then ``footer``), study.png."""
    summary = aggregate(results)
    with atomic_file(out / "results.csv") as tmp:
        results.write_csv(tmp)
    atomic_write_text(out / "results.md", header + "\n" + markdown_table(summary) + footer)
    plot_study(summary, out / "study.png")
    return summary
