"""One self-contained HTML page per study (``OUT/report.html``): summary, comparison tables, PR curves,
confusion matrices, training curves, paired records, label conflicts and label noise.

Built only from what the study wrote (``study_files.load_study``), so ``logsieve report OUT`` rebuilds it
later. One file to mail or archive: figures are PNG data URIs, the CSS is inline, there is no script and
no reference to anything outside the file. Every string that comes from data is HTML-escaped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.artifacts import atomic_write_text
from logsieve.evaluation import report_figures as figures
from logsieve.evaluation.html_parts import Cell, esc, family_cell, image, pm, table
from logsieve.evaluation.report_sections import conflicts_section, noise_section, paired_section
from logsieve.evaluation.study_files import StudyFiles, load_study, scope_frame, summarise

REPORT = "report.html"
SCOPES = (  # (scope, heading, what its sessions are)
    ("test", "Comparison: test split", "every session of the held-out test split"),
    ("unseen", "Comparison: unseen sequences",
     "the test sessions whose exact event sequence never occurs in training — HDFS repeats sequences, "
     "so this is where generalisation shows"),
    ("external", "Comparison: external test set", "every session of the --test file"),
    ("external_unseen", "Comparison: external test set, unseen sequences",
     "the --test sessions whose exact event sequence is not in the training split"),
)  # fmt: skip
COLUMNS = (("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"), ("f1", "F1"),
           ("pr_auc", "PR-AUC"), ("mcc", "MCC"))  # fmt: skip
SUMMARY_METRICS = (("test", "f1", "F1"), ("unseen", "f1", "F1 unseen"), ("test", "pr_auc", "PR-AUC"),
                   ("test", "mcc", "MCC"), ("test", "recall", "recall"), ("test", "precision", "precision"),
                   ("external", "f1", "F1 external"), ("external_unseen", "f1", "F1 external unseen"))  # fmt: skip
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d232a;
 margin:0;background:#f6f7f9}
main{max-width:1400px;margin:0 auto;padding:18px 20px 40px;background:#fff}
h1{font-size:24px;margin:6px 0 4px}h2{font-size:19px;margin:30px 0 8px;padding-top:8px;border-top:2px solid #e3e6ea}
h3{font-size:15px;margin:18px 0 6px}p{margin:6px 0;max-width:1100px}.muted{color:#5d6875}
nav{font-size:13px;margin:6px 0 14px}nav a{margin-right:12px;color:#1f5fa8;text-decoration:none}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
th,td{padding:4px 9px;border-bottom:1px solid #e3e6ea;text-align:right;white-space:nowrap}
th{background:#eef1f5;position:sticky;top:0}td.l,th.l{text-align:left}tbody tr:nth-child(even){background:#fafbfc}
td.best{font-weight:700;color:#0b5a2a}.sd{font-size:11px;color:#6b7785;font-weight:400}
.wide{overflow-x:auto}td.sig{font-weight:700}code{font-size:12.5px;background:#f0f2f5;padding:1px 4px}
.fam-rnn{color:#1f5fa8}.fam-baseline{color:#6b4c0f}.fam-unsupervised{color:#7a2a7a}
figure{margin:10px 0 18px}figure img{max-width:100%;height:auto;border:1px solid #e3e6ea}
figcaption{font-size:13px;color:#5d6875;max-width:1100px}
.note{background:#fff8e1;padding:6px 10px;border-left:3px solid #e0b000}
"""


def write_html_report(study_dir: str | Path, out: str | Path | None = None) -> Path:
    """Build ``study_dir/report.html`` (or ``out``) from the study's files, atomically; returns its path."""
    study = load_study(study_dir)
    return atomic_write_text(Path(out) if out is not None else study.root / REPORT, render_html(study))


def render_html(study: StudyFiles) -> str:
    tables = {scope: summarise(scope_frame(study, scope), ("fit_seconds", "score_seconds", "params"))
              for scope, _, _ in SCOPES}  # fmt: skip
    best = study.best_runs()
    sections = [
        ("summary", "Summary", summary_section(study, tables)),
        *[(f"cmp-{scope}", heading, _comparison(scope, what, tables[scope]))
          for scope, heading, what in SCOPES if "test_data" in study.record or not scope.startswith("external")],
        ("pr", "Precision–recall curves", _pr_section(best)),
        ("confusion", "Confusion matrices", _confusion_section(best)),
        ("training", "Training curves", _training_section(study)),
        ("paired", "Paired record", paired_section(study.record)),
        ("conflicts", "Label conflicts", conflicts_section(study.record, tables["test"])),
        ("noise", "Label noise", noise_section(study.record)),
    ]  # fmt: skip
    nav = " ".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections)
    body = "\n".join(f'<section id="{sid}">\n<h2>{esc(title)}</h2>\n{content}\n</section>'
                     for sid, title, content in sections)  # fmt: skip
    source = study.record.get("data", {}).get("source", "?")
    root = study.root.resolve()  # the same page whichever way the folder was named
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>logsieve study: {esc(Path(str(source)).name)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f'<h1>logsieve study</h1>\n<p class="muted">{esc(root)}</p>\n<nav>{nav}</nav>\n{body}\n'
        '<p class="muted">Built from study.json, results.csv and the run folders under runs/ only; rebuild with '
        f"<code>logsieve report {esc(root)}</code>.</p>\n</main>\n</body>\n</html>\n"
    )


# --- sections ------------------------------------------------------------------------------------------


def summary_section(study: StudyFiles, tables: dict[str, pl.DataFrame]) -> str:
    rec, cfg = study.record, study.run_config()
    data, sizes = rec.get("data", {}), rec.get("splits", {})
    split_cfg = (cfg.get("config") or {}).get("data", {})
    parts = [
        f"<p><b>Data</b>: <code>{esc(data.get('source', '?'))}</code>, {data.get('sessions', 0):,} sessions, "
        f'{data.get("anomalies", 0):,} anomalous; fingerprint <code title="{esc(data.get("sha256", ""))}">sha256 '
        f"{esc(str(data.get('sha256', '?'))[:16])}…</code>"
        + (f"; parsed from raw logs as {esc(data['parse'])}" if data.get("parse") else "")
        + ".</p>",
        f"<p><b>Split</b>: {_split_text(rec, sizes, split_cfg)}</p>",
        f"<p><b>Models</b>: {esc(_families(study))}; seeds {esc(rec.get('seeds', []))}; {len(study.runs)} runs in "
        "the table. Overrides: "
        f"<code>{esc(json.dumps(rec.get('overrides') or {}, sort_keys=True))}</code>; search result: "
        f"{esc(rec.get('search_result', 'shipped'))}; wall time {float(rec.get('seconds', 0)) / 60:.1f} min.</p>",
    ]
    if ext := rec.get("test_data"):
        parts.append(f"<p><b>External test set</b>: <code>{esc(ext.get('source', '?'))}</code>, "
                     f"{ext.get('sessions', 0):,} sessions, {ext.get('anomalies', 0):,} anomalous (sha256 "
                     f"{esc(str(ext.get('sha256', '?'))[:16])}…), scored by every run after fitting.</p>")  # fmt: skip
    if versions := cfg.get("versions"):
        shown = ", ".join(
            f"{k} {v}" for k, v in versions.items() if k in ("logsieve", "torch", "scikit-learn", "python")
        )
        parts.append(f'<p class="muted">Trained with {esc(shown)}.</p>')
    rows = []
    for scope, metric, label in SUMMARY_METRICS:
        summary = tables.get(scope)
        if summary is None or summary.is_empty() or f"{metric}_mean" not in summary.columns:
            continue
        winners, row = _best_of(summary, metric)
        if row is not None:
            rows.append([esc(label), ", ".join(esc(w) for w in winners), pm(row, metric), family_cell(row["kind"])])
    parts.append("<h3>Best model per metric (mean over runs)</h3>")
    parts.append(
        table(["metric", "best model(s)", "mean ± sd", "family"], rows, left=2) if rows else "<p>No metrics.</p>"
    )
    parts.append(
        '<p class="muted">Anomaly is the positive class. Thresholds were tuned on validation (or fixed at 0.5); '
        "test figures describe the models and chose nothing. Ties list every model with the same mean.</p>"
    )
    return "\n".join(parts)


def _families(study: StudyFiles) -> str:
    """``RNN presets: baseline, improved; supervised count models: decision-tree, …`` in table order."""
    kinds = {run.name: run.kind for run in study.runs}
    by_family: dict[str, list[str]] = {}
    for name in study.model_names():
        by_family.setdefault(figures.family_of(kinds[name]), []).append(name)
    return "; ".join(f"{family}: {', '.join(names)}" for family, names in by_family.items())


def _split_text(rec: dict[str, Any], sizes: dict[str, Any], split_cfg: dict[str, Any]) -> str:
    def size(part: str) -> str:
        s = sizes.get(part, {})
        return f"{s.get('sessions', 0):,} ({s.get('anomalies', 0):,} anomalous)"

    kind = esc(split_cfg.get("split", "?"))
    text = (f"{kind} split, train {size('train')} / validation {size('val')} / test {size('test')} sessions"
            f" (validation {split_cfg.get('val_frac', '?')}, test {split_cfg.get('test_frac', '?')})")  # fmt: skip
    if seeds := rec.get("split_seeds"):
        return (
            f"{len(seeds)} {kind} splits; the first: {text.removeprefix(f'{kind} split, ')}; split seeds {esc(seeds)}."
        )
    return f"{text}; split seed {esc(split_cfg.get('split_seed', '?'))}."


def _best_of(summary: pl.DataFrame, metric: str) -> tuple[list[str], dict[str, Any] | None]:
    values = summary.filter(pl.col(f"{metric}_mean").is_not_null() & pl.col(f"{metric}_mean").is_not_nan())
    if values.is_empty():
        return [], None
    top = values[f"{metric}_mean"].max()
    winners = values.filter(pl.col(f"{metric}_mean") >= top - 1e-12)  # type: ignore[operator]
    names = winners["name"].to_list()
    return (names if len(names) <= 4 else [*names[:4], f"+{len(names) - 4} more"]), winners.row(0, named=True)


def _comparison(scope: str, what: str, summary: pl.DataFrame) -> str:
    if summary.is_empty():
        return f"<p>No figures for {esc(what)}: no run has such sessions.</p>"
    head = ["#", "model", "family", "runs", *(label for _, label in COLUMNS), "FP", "FN"]
    timing = scope == "test"
    if timing:
        head += ["fit s", "score s", "parameters"]
    best = {m: _extreme(summary, m, max) for m, _ in COLUMNS} | {m: _extreme(summary, m, min) for m in ("fp", "fn")}
    rows = []
    for i, row in enumerate(summary.iter_rows(named=True), 1):
        cells: list[str | Cell] = [str(i), esc(row["name"]), family_cell(row["kind"]), str(row["runs"])]
        for metric in (*(m for m, _ in COLUMNS), "fp", "fn"):
            digits = 4 if metric not in ("fp", "fn") else (0 if row["runs"] == 1 else 1)
            text = pm(row, metric, digits)
            mean = row.get(f"{metric}_mean")
            cells.append(Cell(text, "best") if mean is not None and mean == best[metric] else text)
        if timing:
            cells += [pm(row, "fit_seconds", 1), pm(row, "score_seconds", 3),
                      "–" if row.get("params_mean") is None else f"{row['params_mean']:,.0f}"]  # fmt: skip
        rows.append(cells)
    n, a = (v or 0 for v in summary.select(pl.col("n_mean", "n_anomalies_mean").mean()).row(0))
    caption = (f"<p>{esc(what[0].upper() + what[1:])}: {n:,.0f} sessions ({a:,.0f} anomalous) per run"
               f"{' on average' if summary['runs'].max() > 1 else ''}. Mean ± sd over each model's runs; FP/FN "  # type: ignore[operator]
               "are mean counts; bold marks the best mean of a column.</p>")  # fmt: skip
    return caption + '\n<div class="wide">' + table(head, rows, left=3) + "</div>"


def _extreme(summary: pl.DataFrame, metric: str, pick: Any) -> float | None:
    values = [v for v in summary[f"{metric}_mean"].to_list() if v is not None and not math.isnan(v)]
    return pick(values) if values else None


def _pr_section(best: dict[str, Any]) -> str:
    png, missing = figures.pr_curves(best)
    note = (f'<p class="note">No stored test scores for: {esc(", ".join(missing))} (runs written before run '
            "folders kept test_scores.parquet, or a test split with one class).</p>") if missing else ""  # fmt: skip
    if png is None:
        return note or "<p>No precision–recall curves: no run stored its test scores.</p>"
    caption = (
        "Precision against recall on the test split for each model's run with the best validation F1 (the run "
        "<code>--export</code> would pick), one panel per family; AP is the PR-AUC of that run, the dot its "
        "operating point at its own threshold. A second row, when there is one, zooms into the upper right corner "
        "of the panels whose operating points all sit high (same colours)."
    )
    return note + _figure(png, "precision-recall curves", caption)


def _confusion_section(best: dict[str, Any]) -> str:
    png = figures.confusion_grid(best)
    if png is None:
        return "<p>No confusion matrices: no run folder holds metrics.json.</p>"
    return _figure(png, "confusion matrices",
                   "Test-split confusion matrix of each model's best-validation-F1 run (one run, not a sum over "
                   "runs), at that run's threshold; colour on a log scale.")  # fmt: skip


def _training_section(study: StudyFiles) -> str:
    png = figures.training_curves(study.runs)
    if png is None:
        return "<p>No training curves: the study has no RNN runs with a history.csv (count models fit in one go).</p>"
    return _figure(png, "training curves",
                   "Every RNN run of the table (seed, and split when there are several): loss per epoch, train "
                   "dashed and validation solid, and validation F1; the dot marks the epoch whose weights were "
                   "kept (best validation).")  # fmt: skip


def _figure(png: bytes, alt: str, caption: str) -> str:
    return f"<figure>{image(png, alt)}<figcaption>{caption}</figcaption></figure>"
