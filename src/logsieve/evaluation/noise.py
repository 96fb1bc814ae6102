"""The label-noise table: one row per model, test F1 and F1 unseen at every training-label noise rate."""

from __future__ import annotations

from typing import Any

import polars as pl


def noise_records(rows: pl.DataFrame) -> list[dict[str, Any]]:
    """Mean (and sd) over seeds of test F1 and F1 unseen per (model, rate), for study.json ``label_noise``."""
    summary = rows.group_by("name", "kind", "noise", maintain_order=True).agg(
        pl.len().alias("runs"),
        pl.col("f1").mean().alias("f1"),
        pl.col("f1").std().fill_null(0.0).alias("f1_sd"),
        pl.col("f1_unseen").mean().alias("f1_unseen"),
        pl.col("f1_unseen").std().fill_null(0.0).alias("f1_unseen_sd"),
    )
    return summary.to_dicts()


def noise_markdown(records: list[dict[str, Any]], rates: list[float]) -> str:
    """Model x rate; models in the order of their F1 at the first rate (the clean one when 0 is listed)."""
    models: dict[str, dict[float, dict[str, Any]]] = {}
    for r in records:
        models.setdefault(r["name"], {})[r["noise"]] = r
    first = rates[0]
    order = sorted(models, key=lambda m: -(models[m].get(first, {}).get("f1") or 0.0))
    head = "| model | " + " | ".join(f"F1 @ {r:g} | F1 unseen @ {r:g}" for r in rates) + " |"
    lines = [
        "\n## Label noise\n",
        "A share of the TRAINING split's labels is flipped (the same seeded sessions for every model at a rate); "
        "validation and test keep their true labels. Test F1 and F1 unseen, mean over seeds.\n",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for name in order:
        cells = [name]
        for rate in rates:
            rec = models[name].get(rate, {})
            cells += [_fmt(rec.get("f1")), _fmt(rec.get("f1_unseen"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
