"""Metrics with anomaly as the positive class. Scores may come per distinct sequence with a count as
sample weight, which gives exactly the per-session figures at a fraction of the cost."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_recall_curve,
    precision_score,
    recall_score,
)


def best_threshold(y: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The cut that maximises F1 (use validation data only). Among equally good cuts take the middle
    one, so the threshold sits inside the gap between classes rather than on its edge."""
    if len(np.unique(y)) < 2:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, scores, sample_weight=weights)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)[:-1]
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    lo = thresholds[best].min()
    below = scores[scores < lo]  # midpoint between the lowest kept score and the next score below it
    return float((lo + below.max()) / 2) if below.size else float(lo)


def classification_metrics(
    y: np.ndarray, scores: np.ndarray, threshold: float = 0.5, weights: np.ndarray | None = None
) -> dict[str, float | int | list[list[int]]]:
    """Accuracy, precision, recall, F1, PR-AUC, MCC and the confusion matrix [[tn, fp], [fn, tp]]."""
    y = np.asarray(y).astype(int)
    pred = (np.asarray(scores) >= threshold).astype(int)
    kw = {"sample_weight": weights}
    cm = confusion_matrix(y, pred, labels=[0, 1], **kw).round().astype(int)
    both = len(np.unique(y)) == 2
    return {
        "n": int(cm.sum()),
        "n_anomalies": int(cm[1].sum()),
        "accuracy": float(accuracy_score(y, pred, **kw)),
        "precision": float(precision_score(y, pred, zero_division=0, **kw)),
        "recall": float(recall_score(y, pred, zero_division=0, **kw)),
        "f1": float(f1_score(y, pred, zero_division=0, **kw)),
        "pr_auc": float(average_precision_score(y, scores, **kw)) if both else float("nan"),
        "mcc": float(matthews_corrcoef(y, pred, **kw)) if both else float("nan"),
        "threshold": float(threshold),
        "confusion": cm.tolist(),
    }


def f1_at(y: np.ndarray, scores: np.ndarray, threshold: float, weights: np.ndarray | None = None) -> float:
    return float(f1_score(y.astype(int), (scores >= threshold).astype(int), sample_weight=weights, zero_division=0))


def paired_comparison(a: list[float], b: list[float], tol: float = 1e-9) -> dict[str, float | int]:
    """Model ``a`` against model ``b`` on the same splits: wins, ties, losses and the exact two-sided
    sign-test p-value (ties dropped). One split's F1 moves in steps of ~0.001, so a mean difference
    means little until the per-split record is unlikely under "either is as likely to win"."""
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs the same splits on both sides ({len(a)} vs {len(b)})")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    wins, losses = sum(d > tol for d in diffs), sum(d < -tol for d in diffs)
    n, k = wins + losses, min(wins, losses)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
    return {"wins": wins, "ties": len(diffs) - n, "losses": losses, "sign_test_p": p}
