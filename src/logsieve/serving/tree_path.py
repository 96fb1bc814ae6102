"""A decision tree's path for a session, in words: "E20 count ≥ 1, E3 count ≤ 7 → anomaly".

Counts are whole numbers, so sklearn's ``x <= 7.5`` reads ``≤ 7`` and ``x > 0.5`` reads ``≥ 1``; several tests
of one event on the way down merge into one range. Only single trees have a path worth reading; forests and
the other kinds return None.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

UNSEEN = "unseen events"  # the count column of events never seen in training


def has_path(model: Any) -> bool:
    return getattr(model, "kind", None) == "decision-tree" and hasattr(getattr(model, "estimator_", None), "tree_")


def decision_paths(model: Any, events: pl.Series, threshold: float) -> list[dict[str, Any] | None]:
    """Per session: {"conditions": [{"event", "min", "max"}], "p_anomaly", "training_sessions", "verdict", "text"};
    all None when ``model`` is not a fitted single decision tree (``CountBaseline("decision-tree")``)."""
    if not has_path(model):
        return [None] * len(events)
    tree = model.estimator_.tree_
    names = ["<pad>", UNSEEN, *model.vocab_.events_]  # the columns of count_vectors
    x = model._features(events)
    paths = model.estimator_.decision_path(x)
    out: list[dict[str, Any] | None] = []
    for i in range(x.shape[0]):
        nodes = paths.indices[paths.indptr[i] : paths.indptr[i + 1]]
        bounds: dict[int, list[float]] = {}  # feature -> [min, max], in order of first test
        for node in nodes:
            f = int(tree.feature[node])
            if tree.children_left[node] == tree.children_right[node]:  # the leaf
                continue
            lo, hi = bounds.setdefault(f, [0.0, math.inf])
            t = float(tree.threshold[node])
            if x[i, f] <= t:
                bounds[f][1] = min(hi, math.floor(t))
            else:
                bounds[f][0] = max(lo, math.floor(t) + 1)
        leaf = int(nodes[-1])
        value = np.asarray(tree.value[leaf][0], dtype=float)
        p = float(value[1] / value.sum()) if value.sum() > 0 else 0.0
        conditions = [
            {"event": names[f], "min": int(lo), "max": None if math.isinf(hi) else int(hi)}
            for f, (lo, hi) in bounds.items()
        ]
        verdict = "anomaly" if p >= threshold else "normal"
        text = ", ".join(_condition_text(c) for c in conditions) or "(the root is a leaf)"
        n = float(tree.weighted_n_node_samples[leaf])
        out.append({
            "conditions": conditions, "p_anomaly": p, "training_sessions": round(n), "verdict": verdict,
            "text": f"{text} → {verdict} (leaf: {p:.2f} anomalous of {n:,.0f} training sessions)",
        })  # fmt: skip
    return out


def _condition_text(c: dict[str, Any]) -> str:
    name, lo, hi = f"{c['event']} count", c["min"], c["max"]
    if hi is None:
        return f"{name} ≥ {lo}"
    if lo == hi:
        return f"{name} = {lo}"
    if lo == 0:
        return f"{name} ≤ {hi}"
    return f"{lo} ≤ {name} ≤ {hi}"
