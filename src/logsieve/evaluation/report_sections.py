"""The study page's sections read from study.json alone: paired records, label conflicts, label noise.

Each says plainly when its part is absent (one split, no --label-noise) rather than leaving a gap.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from logsieve.evaluation.comparison import PAIRED_METRICS
from logsieve.evaluation.html_parts import Cell, esc, fmt, table

SIGNIFICANT = 0.05  # sign-test p below which a W / T / L cell is bold


def paired_section(record: dict[str, Any]) -> str:
    paired = record.get("paired")
    if paired is None:
        return (
            "<p>No paired record: one split. Run the study with <code>--splits K</code> (K &gt; 1) to pair every "
            "model's runs with the best count baseline's on the same split and seed.</p>"
        )
    reference, models = paired.get("reference"), paired.get("models") or {}
    if reference is None or not models:
        return "<p>No paired record: the study has no count baseline to pair against.</p>"
    first = next(iter(models.values()))
    metrics = [(m, label) for m, label in PAIRED_METRICS if m in first]
    head = ["model", *(f"F1 {esc(label)}: W / T / L (p)" for _, label in metrics)]
    rows: list[list[str | Cell]] = []
    for name, by_metric in models.items():
        cells: list[str | Cell] = [esc(name)]
        for metric, _ in metrics:
            r = by_metric.get(metric)
            if r is None:
                cells.append("–")
                continue
            text = f"{r['wins']} / {r['ties']} / {r['losses']} ({r['sign_test_p']:.2g})"
            cells.append(Cell(text, "sig") if r["sign_test_p"] < SIGNIFICANT else text)
        rows.append(cells)
    on = " and ".join(esc(u) for u in paired.get("paired_on", []))
    return (
        f"<p>Reference: <b>{esc(reference)}</b>, the count baseline with the best {esc(paired.get('chosen_by', ''))} "
        f"(validation, never test, chooses it). Each run is paired with the reference's run on the same {on}; "
        "W / T / L are the model's wins, ties and losses, p the exact two-sided sign test (ties dropped); bold: "
        f"p &lt; {SIGNIFICANT}.</p>\n" + table(head, rows)
    )


def conflicts_section(record: dict[str, Any], test: pl.DataFrame) -> str:
    """Test sessions whose label contradicts their training twins, and the F1 ceiling they impose."""
    conflicts = record.get("label_conflicts")
    if not conflicts:
        return "<p>No label-conflict record in study.json (a study from an older logsieve).</p>"
    rows: list[list[str | Cell]] = []
    for by, label in (("counts", "same event counts"), ("sequence", "same exact sequence")):
        c = conflicts.get(by)
        if c:
            rows.append([label, f"{c['fp']:,}", f"{c['fn']:,}", f"{c['fp'] + c['fn']:,}", fmt(c["f1_ceiling"])])
    best = test.row(0, named=True) if not test.is_empty() else None
    reached = (f" The best mean test F1 of the table is {fmt(best['f1_mean'])} ({esc(best['name'])}).") if best else ""
    parts = [
        "<p>A test session conflicts when its label is the minority label of the training sessions that look the "
        "same (twins). A model that follows its training data gets these wrong: forced false positives (normal "
        "sessions with anomalous twins) and forced false negatives, and an F1 ceiling if only they were wrong."
        f"{reached}</p>",
        table(["twins", "forced FP", "forced FN", "sessions", "F1 ceiling"], rows),
    ]
    if per_split := record.get("per_split"):
        split_rows: list[list[str | Cell]] = []
        for p in per_split:
            c, q = p["label_conflicts"]["counts"], p["label_conflicts"]["sequence"]
            test_size = p.get("splits", {}).get("test", {})
            split_rows.append([esc(p["split_seed"]), f"{test_size.get('sessions', 0):,}",
                               f"{test_size.get('anomalies', 0):,}", f"{c['fp'] + c['fn']:,}", fmt(c["f1_ceiling"]),
                               f"{q['fp'] + q['fn']:,}", fmt(q["f1_ceiling"])])  # fmt: skip
        parts.append("<h3>Per split</h3>")
        head = ["split seed", "test sessions", "anomalous", "count conflicts", "ceiling (counts)",
                "sequence conflicts", "ceiling (sequence)"]  # fmt: skip
        parts.append(table(head, split_rows))
    return "\n".join(parts)


def noise_section(record: dict[str, Any]) -> str:
    """Model x training-label noise rate: test F1 and F1 unseen (mean ± sd over seeds)."""
    records = record.get("label_noise")
    if not records:
        return "<p>No label-noise runs: the study was run without <code>--label-noise</code>.</p>"
    rates = sorted({float(r["noise"]) for r in records})
    models: dict[str, dict[float, dict[str, Any]]] = {}
    for r in records:
        models.setdefault(r["name"], {})[float(r["noise"])] = r
    order = sorted(models, key=lambda m: -(models[m].get(rates[0], {}).get("f1") or 0.0))
    head = ["model", *(f"{what} @ {rate:g}" for rate in rates for what in ("F1", "F1 unseen"))]
    rows: list[list[str | Cell]] = []
    for name in order:
        cells: list[str | Cell] = [esc(name)]
        for rate in rates:
            rec = models[name].get(rate, {})
            cells += [_mean_sd(rec, "f1"), _mean_sd(rec, "f1_unseen")]
        rows.append(cells)
    return (
        "<p>A share of the TRAINING split's labels is flipped (the same seeded sessions for every model at a rate); "
        "validation and test keep their true labels. Test F1 and F1 unseen, mean ± sd over seeds; models in the "
        f"order of their F1 at rate {rates[0]:g}.</p>\n" + table(head, rows)
    )


def _mean_sd(rec: dict[str, Any], key: str) -> str:
    if rec.get(key) is None:
        return "–"
    return fmt(rec[key]) if rec.get("runs", 1) == 1 else f"{fmt(rec[key])} ± {fmt(rec.get(f'{key}_sd'))}"
