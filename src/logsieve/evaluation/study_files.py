"""A finished study read back from disk (study.json, results.csv, runs/): all the study page is built from.

The page never needs the data or the models again, so ``logsieve report`` can rebuild it on any machine
that holds the study folder. Run directories follow ``training.study.run_path``: ``runs/<name>/seed-<k>``,
or ``runs/<name>/split-<s>/seed-<k>`` with several splits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.artifacts import read_json
from logsieve.errors import LogsieveError

# (key in metrics.json, or in its "unseen" / "external" parts) shown per model, mean ± sd over runs
METRICS = ("accuracy", "precision", "recall", "f1", "pr_auc", "mcc")
FAMILIES = {"rnn": "RNN presets", "baseline": "supervised count models", "unsupervised": "unsupervised count models"}


@dataclass(frozen=True)
class Run:
    """One row of results.csv with its run directory and metrics.json (None when that file is gone)."""

    name: str
    kind: str
    seed: int
    split: int | None
    row: dict[str, Any]
    directory: Path
    metrics: dict[str, Any] | None


@dataclass(frozen=True)
class StudyFiles:
    root: Path
    record: dict[str, Any]
    results: pl.DataFrame
    runs: list[Run]

    def best_runs(self) -> dict[str, Run]:
        """Per model, the run with the best VALIDATION F1 (then validation PR-AUC, fewer parameters, earlier
        row) — the one ``--export`` would pick; test figures never choose which run a plot shows."""
        best: dict[str, Run] = {}
        for run in sorted(self.runs, key=_validation_rank):
            best.setdefault(run.name, run)
        return {name: best[name] for name in self.model_names()}

    def model_names(self) -> list[str]:
        return list(dict.fromkeys(run.name for run in self.runs))

    def run_config(self) -> dict[str, Any]:
        """config.json of the first run that has one (split kind, versions), or {}."""
        for run in self.runs:
            path = run.directory / "config.json"
            if path.is_file():
                try:
                    record = read_json(path, "run record")
                except LogsieveError:
                    continue
                if isinstance(record, dict):
                    return record
        return {}


def load_study(root: str | Path) -> StudyFiles:
    """Read a study folder; anything that is not one (or is damaged) is one LogsieveError line."""
    root = Path(root)
    if not root.is_dir():
        raise LogsieveError(f"{root}: not a study folder (no such directory); give the --out of `logsieve study`")
    missing = [name for name in ("study.json", "results.csv") if not (root / name).is_file()]
    if missing:
        raise LogsieveError(
            f"{root}: not a study folder (missing {' and '.join(missing)}); give the --out of `logsieve study`"
        )
    record = read_json(root / "study.json", "study record")
    if not isinstance(record, dict):
        raise LogsieveError(f"{root / 'study.json'}: study record is damaged (not a JSON object)")
    try:
        results = pl.read_csv(root / "results.csv", infer_schema_length=None)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LogsieveError(f"{root / 'results.csv'}: cannot read the results table ({exc})") from None
    needed = {"name", "kind", "seed", "f1"}
    if results.is_empty() or not needed <= set(results.columns):
        raise LogsieveError(f"{root / 'results.csv'}: results table is damaged (no rows, or no name/kind/seed/f1)")
    return StudyFiles(root, record, results, [_run(root, row) for row in results.iter_rows(named=True)])


def _run(root: Path, row: dict[str, Any]) -> Run:
    split = row.get("split")
    base = root / "runs" / str(row["name"])
    directory = (base if split is None else base / f"split-{split}") / f"seed-{row['seed']}"
    metrics = None
    if (directory / "metrics.json").is_file():
        try:
            loaded = read_json(directory / "metrics.json", "run metrics")
            metrics = loaded if isinstance(loaded, dict) else None
        except LogsieveError:
            metrics = None
    return Run(str(row["name"]), str(row["kind"]), int(row["seed"]), split, row, directory, metrics)


def _validation_rank(run: Run) -> tuple[float, float, float]:
    def key(value: Any, sign: float) -> float:
        return math.inf if value is None or (isinstance(value, float) and math.isnan(value)) else sign * value

    return key(run.row.get("val_f1"), -1.0), key(run.row.get("val_pr_auc"), -1.0), key(run.row.get("params"), 1.0)


def subset_metrics(run: Run, scope: str) -> dict[str, Any] | None:
    """The metrics of one scope of a run: "test", "unseen" (test sessions whose sequence is not in training),
    "external" or "external_unseen"; None when the run has no such part (e.g. no unseen session)."""
    m = run.metrics
    if m is None:
        return None
    if scope.startswith("external"):
        m = m.get("external")
        if m is None:
            return None
        scope = scope.removeprefix("external").lstrip("_") or "test"
    part = m if scope == "test" else m.get(scope)
    return part if isinstance(part, dict) and "f1" in part else None


def scope_frame(study: StudyFiles, scope: str) -> pl.DataFrame:
    """One row per run of ``scope``'s metrics (FP/FN from the confusion matrix; times and size for "test")."""
    rows = []
    for run in study.runs:
        m = subset_metrics(run, scope)
        if m is None:
            continue
        (_, fp), (fn, _) = m["confusion"]
        row: dict[str, Any] = {"name": run.name, "kind": run.kind, "n": m.get("n"), "n_anomalies": m.get("n_anomalies")}
        row.update({k: _number(m.get(k)) for k in METRICS})
        row.update(fp=fp, fn=fn)
        if scope == "test":
            row.update({k: _number(run.row.get(k)) for k in ("fit_seconds", "params")})
            row["score_seconds"] = _number(m.get("score_seconds"))
        rows.append(row)
    if not rows:
        return pl.DataFrame()
    numbers = [c for c in (*METRICS, "fit_seconds", "params", "score_seconds") if c in rows[0]]
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(pl.col(numbers).cast(pl.Float64))


def _number(value: Any) -> float | None:
    """NaN (e.g. PR-AUC of a subset with one class) and missing become None, so means skip them."""
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def summarise(frame: pl.DataFrame, extra: tuple[str, ...] = ()) -> pl.DataFrame:
    """Mean and sd over a model's runs (sd 0 for one run), sorted by mean F1 (nulls last)."""
    if frame.is_empty():
        return frame
    cols = [c for c in (*METRICS, "fp", "fn", *extra) if c in frame.columns]
    aggs = [pl.len().alias("runs")]
    for c in cols:
        aggs += [pl.col(c).mean().alias(f"{c}_mean"), pl.col(c).std().fill_null(0.0).alias(f"{c}_sd")]
    aggs += [pl.col("n").mean().alias("n_mean"), pl.col("n_anomalies").mean().alias("n_anomalies_mean")]
    summary = frame.group_by("name", "kind", maintain_order=True).agg(*aggs)
    return summary.sort("f1_mean", descending=True, nulls_last=True, maintain_order=True)
