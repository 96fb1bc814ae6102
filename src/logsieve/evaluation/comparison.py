"""Paired comparison over splits x seeds: every model against the best count baseline.

One split's test set holds a few hundred anomalies, so one session moves F1 by ~0.001 and a mean
difference can be luck. Pairing each model's run with the reference's run on the same split and seed
and counting wins / ties / losses (exact sign test, ``paired_comparison``) says whether a lead is real.
The reference is the count baseline with the best mean VALIDATION F1 (ties: validation PR-AUC): test
figures never choose what the models are compared against.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from logsieve.evaluation.metrics import paired_comparison

# (results.csv column, label in results.md); the external ones only when the study had --test
PAIRED_METRICS = (
    ("f1", "test"),
    ("f1_unseen", "test, unseen sequences"),
    ("f1_external", "external test"),
    ("f1_external_unseen", "external test, unseen sequences"),
)
UNITS = ("split", "seed")
COUNT_KINDS = ("baseline", "unsupervised")  # the models on event-count vectors, supervised or not


def best_baseline(results: pl.DataFrame) -> str | None:
    """The count baseline (``COUNT_KINDS``) with the highest mean validation F1 (then PR-AUC, then table order)."""
    base = results.filter(pl.col("kind").is_in(COUNT_KINDS))
    if base.is_empty():
        return None
    means = base.group_by("name", maintain_order=True).agg(pl.col("val_f1").mean(), pl.col("val_pr_auc").mean())
    ranked = means.with_row_index("order").sort(["val_f1", "val_pr_auc", "order"], descending=[True, True, False])
    return str(ranked.row(0, named=True)["name"])


def paired_records(results: pl.DataFrame) -> dict[str, Any]:
    """Per model and metric: wins / ties / losses / sign-test p against the best count baseline, paired
    on (split, seed). A pair is dropped when either side has no value (e.g. no unseen sessions)."""
    reference = best_baseline(results)
    if reference is None:
        return {"reference": None, "models": {}}
    units = [u for u in UNITS if u in results.columns]
    ref = results.filter(pl.col("name") == reference)
    metrics = [(m, label) for m, label in PAIRED_METRICS if m in results.columns]
    models: dict[str, dict[str, Any]] = {}
    for name in results["name"].unique(maintain_order=True).to_list():
        if name == reference:
            continue
        joined = results.filter(pl.col("name") == name).join(ref, on=units, suffix="_ref")
        models[name] = {}
        for metric, _ in metrics:
            pairs = joined.select(metric, f"{metric}_ref").drop_nulls()
            record = paired_comparison(pairs[metric].to_list(), pairs[f"{metric}_ref"].to_list())
            models[name][metric] = {**record, "pairs": pairs.height}
    return {"reference": reference, "chosen_by": "mean validation F1", "paired_on": units, "models": models}


def paired_markdown(record: dict[str, Any]) -> str:
    """The paired records as a Markdown section (empty when there is no baseline to compare with)."""
    if record["reference"] is None or not record["models"]:
        return ""
    first = next(iter(record["models"].values()))
    metrics = [(m, label) for m, label in PAIRED_METRICS if m in first]
    head = "| model | " + " | ".join(f"F1 {label}: W / T / L (p)" for _, label in metrics) + " |"
    lines = [
        f"\n## Paired record against {record['reference']}\n",
        f"Reference: the count baseline with the best mean validation F1 ({record['reference']}). Each run is "
        f"paired with the reference's run on the same {' and '.join(record['paired_on'])}; W / T / L are the "
        "model's wins, ties and losses, p the exact two-sided sign test (ties dropped).\n",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for name, by_metric in record["models"].items():
        cells = [f"{r['wins']} / {r['ties']} / {r['losses']} ({r['sign_test_p']:.2g})"
                 for r in (by_metric[m] for m, _ in metrics)]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
