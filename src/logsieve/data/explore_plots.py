"""The plots of the data analysis (``explore``): PNG bytes from matplotlib figures, no global pyplot state."""

from __future__ import annotations

import io

import numpy as np
import polars as pl
from matplotlib.figure import Figure

CLASSES = ("normal", "anomaly", "unknown")
COLORS = {"normal": "tab:blue", "anomaly": "tab:red", "unknown": "tab:gray"}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_class_balance(s: dict) -> bytes:
    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.subplots()
    names = list(s["classes"])
    bars = ax.bar(names, [s["classes"][c] for c in names], color=[COLORS[c] for c in names])
    ax.bar_label(bars, labels=[f"{s['classes'][c]:,}" for c in names])
    ax.margins(y=0.12)  # linear on purpose: the imbalance is the message
    rate = "" if s["anomaly_rate"] is None else f" (anomaly rate {100 * s['anomaly_rate']:.2f} %)"
    ax.set(ylabel="sessions", title=f"Class balance{rate}")
    return _png(fig)


def plot_lengths(t: pl.DataFrame) -> bytes:
    fig = Figure(figsize=(6.5, 3.5))
    ax = fig.subplots()
    q = t["length"].quantile(0.995, "nearest")
    hi = int(q) if q is not None else 1  # None only for an empty table, which summarize already rejects
    bins = [i - 0.5 for i in range(1, hi + 2)]
    for c in CLASSES:
        x = t.filter(pl.col("cls") == c)["length"].to_numpy()
        if len(x):
            ax.hist(np.minimum(x, hi), bins=bins, density=True, histtype="step", lw=1.5, color=COLORS[c], label=c)
    ax.set(xlabel=f"events per session (clipped at {hi})", ylabel="share of class", title="Sequence length per class")
    ax.legend()
    return _png(fig)


def plot_events(s: dict) -> bytes:
    events = list(s["events"])
    if len(events) > 60:  # mined vocabularies can be large: keep the 60 most used, in natural order
        used = sorted(events, key=lambda e: -sum(v["sessions"] for v in s["events"][e].values()))[:60]
        events = [e for e in events if e in used]
    classes = [c for c in ("normal", "anomaly") if c in s["classes"]] or list(s["classes"])
    fig = Figure(figsize=(max(6.0, 0.32 * len(events)), 3.6))
    ax = fig.subplots()
    x, width = np.arange(len(events)), 0.8 / len(classes)
    for k, c in enumerate(classes):
        share = [(s["events"][e].get(c) or {}).get("share") or 0 for e in events]
        ax.bar(x + (k - (len(classes) - 1) / 2) * width, share, width, color=COLORS[c], label=c)
    ax.set_xticks(x, events, rotation=90, fontsize=8)
    ax.set(ylabel="share of sessions containing it", title="Event use per class")
    ax.legend()
    return _png(fig)


def plot_duplication(t: pl.DataFrame) -> bytes:
    """Cumulative share of sessions covered by the k most frequent sequences of each class."""
    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.subplots()
    for c in CLASSES:
        counts = t.filter(pl.col("cls") == c).group_by("seq").len()["len"].sort(descending=True).to_numpy()
        if len(counts):
            ax.plot(
                np.arange(1, len(counts) + 1),
                np.cumsum(counts) / counts.sum(),
                color=COLORS[c],
                label=f"{c} ({len(counts):,} distinct)",
            )
    ax.set_xscale("log")
    ax.set(
        xlabel="k most frequent distinct sequences (log)",
        ylabel="share of sessions covered",
        title="Duplication: few sequences cover most sessions",
        ylim=(0, 1.02),
    )
    ax.legend()
    return _png(fig)


def plot_overlap(s: dict) -> bytes:
    per = s["split"]["per_class"]
    names = list(per)
    seen = np.array([per[c]["seen_share"] for c in names])
    fig = Figure(figsize=(4.8, 3.2))
    ax = fig.subplots()
    ax.bar(names, seen, color=[COLORS[c] for c in names], label="sequence seen in train")
    ax.bar(names, 1 - seen, bottom=seen, color="white", edgecolor="black", hatch="//", label="unseen")
    for i, v in enumerate(seen):
        ax.text(i, v / 2, f"{100 * v:.1f} %", ha="center", va="center", color="white", fontweight="bold")
    ax.set(
        ylabel="share of test sessions",
        ylim=(0, 1),
        title=f"Test sequences already in train ({s['split']['method']} split)",
    )
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


# --- report ---------------------------------------------------------------------------------------
