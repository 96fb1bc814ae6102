"""The study: every chosen preset x seed on one shared split, plus classical baselines, in one table.

Every model, RNN or baseline, leaves a run directory ``out/runs/<name>/seed-<k>`` so any of them can be
exported as a bundle; ``pick_run`` chooses one by validation F1 (never test).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console

from logsieve.artifacts import atomic_dir, versions, write_json
from logsieve.config import DataConfig, RunConfig, resolve_preset
from logsieve.data.load import DataInfo
from logsieve.data.splits import Splits
from logsieve.errors import LogsieveError
from logsieve.evaluation.evaluate import conflict_summary, evaluate_scorer
from logsieve.evaluation.report import result_row, write_study_report
from logsieve.features.counts import normal_profiles, write_profiles
from logsieve.models.baselines import BASELINES, CountBaseline
from logsieve.training.runs import NORMALS, make_splits, split_summary, train_run


def baseline_run(
    kind: str, seed: int, splits: Splits, out: str | Path, data: DataInfo, split: DataConfig
) -> dict[str, Any]:
    """Fit one count baseline and write its run directory (config, metrics, model files, normal profiles)
    atomically, like ``train_run`` does for the RNNs."""
    model = CountBaseline(kind, seed=seed).fit(splits.train, splits.val)  # type: ignore[arg-type]
    metrics = evaluate_scorer(model, splits.test, train=splits.train)
    metrics.update(validation=evaluate_scorer(model, splits.val), fit_seconds=model.fit_seconds_,
                   params=model.n_parameters())  # fmt: skip
    with atomic_dir(out) as tmp:
        model.save(tmp)
        write_json(tmp / "config.json", {
            "kind": kind, "name": kind, "config": {**model.get_config(), "data": split.model_dump(mode="json")},
            "seed": seed, "data": data.__dict__, "splits": split_summary(splits), "versions": versions(),
        })  # fmt: skip
        write_json(tmp / "metrics.json", metrics)
        write_profiles(tmp / NORMALS, normal_profiles(splits.train))
    return metrics


def run_baselines(splits: Splits, seed: int, out: Path, data: DataInfo, split: DataConfig) -> list[dict[str, Any]]:
    rows = []
    for kind in BASELINES:
        metrics = baseline_run(kind, seed, splits, out / "runs" / kind / f"seed-{seed}", data, split)
        extra = {"fit_seconds": metrics["fit_seconds"], "params": metrics["params"], "epochs": None,
                 **_validation_extra(metrics)}  # fmt: skip
        rows.append(result_row(kind, "baseline", seed, metrics, extra))
    return rows


def _validation_extra(metrics: dict[str, Any]) -> dict[str, Any]:
    return {"val_f1": metrics["validation"]["f1"], "val_pr_auc": metrics["validation"]["pr_auc"]}


def run_study(
    sessions: pl.DataFrame,
    data: DataInfo,
    out: str | Path,
    presets: Sequence[str],
    seeds: Sequence[int],
    overrides: dict[str, Any] | None = None,
    search_result: str | Path | None = None,
    baselines: bool = True,
    progress: bool = True,
    console: Console | None = None,
    jobs: int = 1,
) -> pl.DataFrame:
    """Train every (preset, seed) into ``out/runs/<preset>/seed-<k>``; write results.csv/.md and study.png.

    All runs share the split of the first config (``data.split_seed``), so the table compares models on
    the same test sessions; seeds vary initialisation, batch order and augmentation. ``jobs`` > 1 trains
    that many runs at once in worker processes, splitting the CPU threads between them.
    """
    out = Path(out)
    console = console or Console(stderr=True)
    configs: list[RunConfig] = [resolve_preset(p, s, overrides, search_result) for p in presets for s in seeds]
    splits = make_splits(sessions, configs[0], data.source)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for i, (cfg, metrics) in enumerate(_train_all(configs, splits, out, data, progress, jobs), 1):
        extra = {k: metrics[k] for k in ("fit_seconds", "params", "best_epoch", "epochs_run", "seconds_per_epoch")}
        extra.update(_validation_extra(metrics))
        rows.append(result_row(cfg.preset, "rnn", cfg.seed, metrics, extra))
        console.print(
            f"[{i}/{len(configs)}] {cfg.preset} seed {cfg.seed}: F1 {metrics['f1']:.4f} "
            f"(FP {metrics['confusion'][0][1]}, FN {metrics['confusion'][1][0]}) in {metrics['fit_seconds']:.0f}s"
        )
    if baselines:
        for seed in seeds:
            rows.extend(run_baselines(splits, seed, out, data, configs[0].data))
    results = pl.DataFrame(rows, infer_schema_length=None)
    conflicts = conflict_summary(splits.train, splits.test)
    header = _header(data, splits, presets, seeds, time.perf_counter() - started) + _conflict_note(conflicts)
    write_study_report(results, out, header)
    write_json(out / "study.json", {
        "data": data.__dict__, "splits": split_summary(splits), "presets": list(presets), "seeds": list(seeds),
        "overrides": overrides or {}, "search_result": str(search_result) if search_result else "shipped",
        "label_conflicts": conflicts, "seconds": time.perf_counter() - started,
    })  # fmt: skip
    return results


def check_export_choice(which: str, presets: Sequence[str], baselines: bool) -> None:
    """Fail before training when ``--export`` names a model the study will not train."""
    names = [*presets, *(BASELINES if baselines else ())]
    if which != "best" and which not in names:
        raise LogsieveError(f"--export {which!r}: not a model of this study; choose best or one of: {', '.join(names)}")


def pick_run(results: pl.DataFrame, out: str | Path, which: str = "best") -> tuple[Path, dict[str, Any]]:
    """The run directory to export: the run (any model and seed, or only ``which``'s seeds) with the best
    VALIDATION F1 — test data never picks. Ties go to the higher validation PR-AUC (ranking quality beyond
    one cut), then to the smaller model (fewer parameters / tree nodes), then to the earlier row."""
    rows = results if which == "best" else results.filter(pl.col("name") == which)
    if rows.is_empty():
        raise LogsieveError(f"--export {which!r}: no such model in this study's results")
    ranked = rows.with_row_index("order").sort(
        ["val_f1", "val_pr_auc", "params", "order"], descending=[True, True, False, False], nulls_last=True
    )
    row = ranked.row(0, named=True)
    return Path(out) / "runs" / row["name"] / f"seed-{row['seed']}", row


def _run_dir(out: Path, cfg: RunConfig) -> Path:
    return out / "runs" / cfg.preset / f"seed-{cfg.seed}"


def _train_all(
    configs: list[RunConfig], splits: Splits, out: Path, data: DataInfo, progress: bool, jobs: int
) -> Iterator[tuple[RunConfig, dict[str, Any]]]:
    """Yield (config, metrics) as runs finish; in order when ``jobs`` == 1."""
    if jobs <= 1 or len(configs) == 1:
        for cfg in configs:
            yield cfg, train_run(cfg, splits, _run_dir(out, cfg), data, progress)
        return
    threads = 1  # small RNNs are latency-bound: one thread per process beats shared threads
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool:  # fmt: skip
        futures = {pool.submit(train_run, cfg, splits, _run_dir(out, cfg), data, False): cfg for cfg in configs}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _header(data: DataInfo, splits: Splits, presets: Sequence[str], seeds: Sequence[int], seconds: float) -> str:
    sizes = split_summary(splits)
    return (
        "# logsieve study\n\n"
        f"Data: `{data.source}` (sha256 `{data.sha256[:16]}…`, {data.sessions:,} sessions, {data.anomalies:,} anomalous). "
        f"Split: train {sizes['train']['sessions']:,} / validation {sizes['val']['sessions']:,} / "
        f"test {sizes['test']['sessions']:,} sessions ({sizes['test']['anomalies']} anomalous in test). "
        f"Presets: {len(presets)}, seeds: {list(seeds)}; wall time {seconds / 60:.1f} min.\n\n"
        "Anomaly is the positive class. Thresholds are tuned on validation only (or fixed at 0.5). "
        "*F1 unseen* is F1 on the test sessions whose exact sequence never occurs in training — HDFS repeats "
        "sequences, so this is the figure that shows generalisation. Mean ± sd over seeds.\n"
    )


def _conflict_note(conflicts: dict[str, dict[str, float | int]]) -> str:
    """Why the top of the table can tie: some test labels contradict their training twins."""
    c, q = conflicts["counts"], conflicts["sequence"]
    return (
        f"\nLabel conflicts: {c['fp'] + c['fn']} test sessions ({c['fp']} normal, {c['fn']} anomalous) carry the "
        "minority label of the training sessions with the same event counts, so a model that follows its "
        f"training data on counts scores at most F1 {c['f1_ceiling']:.4f}; by exact sequence "
        f"{q['fp'] + q['fn']} (ceiling {q['f1_ceiling']:.4f}).\n"
    )
