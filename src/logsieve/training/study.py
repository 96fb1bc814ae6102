"""The study: every chosen preset x seed on one shared split (or on K random splits), plus classical
baselines, in one table.

Every model, RNN or baseline, leaves a run directory ``out/runs/<name>/seed-<k>`` (with K > 1 splits
``out/runs/<name>/split-<s>/seed-<k>``; label-noise runs ``out/runs/<name>/noise-<rate>/seed-<k>``) so any of
them can be exported as a bundle; ``pick_run`` chooses one by validation F1 (never test).
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
from logsieve.evaluation.comparison import paired_markdown, paired_records
from logsieve.evaluation.evaluate import conflict_summary, evaluate_scorer, score_and_evaluate
from logsieve.evaluation.html_report import write_html_report
from logsieve.evaluation.noise import noise_markdown, noise_records
from logsieve.evaluation.report import result_row, write_study_report
from logsieve.evaluation.scores import write_scores
from logsieve.features.counts import normal_profiles, write_profiles
from logsieve.features.noise import flip_labels
from logsieve.models.baselines import BASELINES, CountBaseline
from logsieve.models.deeplog import DeepLog
from logsieve.models.unsupervised import UNSUPERVISED
from logsieve.parsing.spec import save_spec
from logsieve.training.runs import (
    NORMALS,
    ExternalTest,
    external_metrics,
    make_splits,
    split_summary,
    train_run,
)

ZOO: tuple[str, ...] = (*BASELINES, DeepLog.kind)  # every non-RNN model a study fits next to the presets


def baseline_run(
    kind: str,
    seed: int,
    splits: Splits,
    out: str | Path,
    data: DataInfo,
    split: DataConfig,
    external: ExternalTest | None = None,
) -> dict[str, Any]:
    """Fit one zoo model (count baseline or DeepLog) and write its run directory (config, metrics, model files,
    normal profiles) atomically, like ``train_run`` does for the RNNs. No test label is read before the model
    is final."""
    model = zoo_model(kind, seed).fit(splits.train, splits.val)
    metrics, test_scores = score_and_evaluate(model, splits.test, train=splits.train)
    if external is not None:
        metrics["external"] = external_metrics(model, external, splits.train)
    metrics.update(validation=evaluate_scorer(model, splits.val), fit_seconds=model.fit_seconds_,
                   params=model.n_parameters())  # fmt: skip
    with atomic_dir(out) as tmp:
        model.save(tmp)
        write_json(tmp / "config.json", {
            "kind": kind, "name": kind, "config": {**model.get_config(), "data": split.model_dump(mode="json")},
            "seed": seed, "data": data.record(), "splits": split_summary(splits), "versions": versions(),
            **({"test_data": external.info.record()} if external is not None else {}),
        })  # fmt: skip
        write_json(tmp / "metrics.json", metrics)
        save_spec(tmp, data.parse)  # parse.json: how raw lines became its sessions, for export
        write_profiles(tmp / NORMALS, normal_profiles(splits.train))
        write_scores(tmp, splits.test, test_scores)  # for the study page's PR curves
    return metrics


def zoo_model(kind: str, seed: int) -> CountBaseline | DeepLog:
    """An unfitted zoo member: a count baseline, or DeepLog (next-event LSTM on normal sessions)."""
    return DeepLog(seed=seed) if kind == DeepLog.kind else CountBaseline(kind, seed=seed)  # type: ignore[arg-type]


def run_baselines(
    splits: Splits,
    seed: int,
    out: Path,
    data: DataInfo,
    split: DataConfig,
    external: ExternalTest | None = None,
    split_seed: int | None = None,
    noise: float | None = None,
) -> list[dict[str, Any]]:
    rows = []
    for kind in ZOO:
        target = run_path(out, kind, seed, split_seed, noise)
        metrics = baseline_run(kind, seed, splits, target, data, split, external)
        extra = {"fit_seconds": metrics["fit_seconds"], "params": metrics["params"], "epochs": None,
                 **_validation_extra(metrics)}  # fmt: skip
        # fit without labels (DeepLog: on normal sessions); labels only set their cut on validation
        family = "deeplog" if kind == DeepLog.kind else "unsupervised" if kind in UNSUPERVISED else "baseline"
        rows.append(result_row(kind, family, seed, metrics, extra))
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
    external: ExternalTest | None = None,
    n_splits: int = 1,
    label_noise: Sequence[float] = (),
) -> pl.DataFrame:
    """Train every (preset, seed) into ``out/runs/<preset>/seed-<k>``; write results.csv/.md and study.png.

    All runs share the split of the first config (``data.split_seed``), so the table compares models on
    the same test sessions; seeds vary initialisation, batch order and augmentation. ``n_splits`` > 1
    repeats everything on the random splits ``split_seed`` .. ``split_seed + K - 1``: the table is then the
    mean ± sd over splits x seeds and results.md adds every model's paired record against the best count
    baseline. ``external`` is also scored by every run. ``jobs`` > 1 trains that many runs at once in worker
    processes, splitting the CPU threads between them. ``label_noise`` rates each retrain every model with
    that share of the TRAINING labels flipped (validation and test untouched) and add a model x rate table;
    rate 0 reuses the clean runs.
    """
    out = Path(out)
    console = console or Console(stderr=True)
    if n_splits < 1:
        raise LogsieveError("--splits must be at least 1")
    configs: list[RunConfig] = [resolve_preset(p, s, overrides, search_result) for p in presets for s in seeds]
    if n_splits > 1 and configs[0].data.split != "random":
        raise LogsieveError("--splits K > 1 needs the random split: a chronological split exists only once")
    if label_noise and n_splits > 1:
        raise LogsieveError("--label-noise runs on one split: drop --splits or --label-noise")
    first_seed = configs[0].data.split_seed
    split_seeds = [first_seed + i for i in range(n_splits)]
    rows: list[dict[str, Any]] = []
    per_split: list[dict[str, Any]] = []
    noisy: list[dict[str, Any]] = []
    started = time.perf_counter()
    for split_seed in split_seeds:
        tag = None if n_splits == 1 else split_seed
        cfgs = configs if tag is None else [_with_split_seed(c, split_seed) for c in configs]
        splits = make_splits(sessions, cfgs[0], data.source)
        new = _study_one_split(cfgs, splits, out, data, progress, console, jobs, external, tag)
        if baselines:
            for seed in seeds:
                new.extend(run_baselines(splits, seed, out, data, cfgs[0].data, external, tag))
        rows.extend(new if tag is None else [{"split": tag, **row} for row in new])
        if label_noise:
            noisy = _noise_rows(label_noise, cfgs, splits, out, data, progress, console, jobs, external,
                                seeds if baselines else (), new)  # fmt: skip
        per_split.append({"split_seed": split_seed, "splits": split_summary(splits),
                          "label_conflicts": conflict_summary(splits.train, splits.test)})  # fmt: skip
    results = pl.DataFrame(rows, infer_schema_length=None)
    first = per_split[0]
    seconds = time.perf_counter() - started
    header = _header(data, first["splits"], presets, seeds, seconds) + _conflict_note(first["label_conflicts"])
    record: dict[str, Any] = {
        "data": data.record(), "splits": first["splits"], "presets": list(presets), "seeds": list(seeds),
        "overrides": overrides or {}, "search_result": str(search_result) if search_result else "shipped",
        "label_conflicts": first["label_conflicts"],
    }  # fmt: skip
    footer = ""
    if external is not None:
        record["test_data"] = external.info.record()
        header += _external_note(external)
    if n_splits > 1:
        paired = paired_records(results)
        record.update(split_seeds=split_seeds, per_split=per_split, paired=paired)
        header += _splits_note(split_seeds, seeds, per_split)
        footer = paired_markdown(paired)
    if label_noise:
        record["label_noise"] = noise_records(pl.DataFrame(noisy, infer_schema_length=None))
        footer += noise_markdown(record["label_noise"], list(label_noise))
    write_study_report(results, out, header, footer)
    write_json(out / "study.json", {**record, "seconds": time.perf_counter() - started})
    write_html_report(out)  # report.html: the whole study on one self-contained page
    return results


def _study_one_split(
    configs: list[RunConfig],
    splits: Splits,
    out: Path,
    data: DataInfo,
    progress: bool,
    console: Console,
    jobs: int,
    external: ExternalTest | None,
    tag: int | None,
    noise: float | None = None,
) -> list[dict[str, Any]]:
    """The RNN rows of one split, printing one line per finished run."""
    rows = []
    where = ("" if tag is None else f" split {tag}") + ("" if noise is None else f" noise {noise:g}")
    runs = _train_all(configs, splits, out, data, progress, jobs, external, tag, noise)
    for i, (cfg, metrics) in enumerate(runs, 1):
        extra = {k: metrics[k] for k in ("fit_seconds", "params", "best_epoch", "epochs_run", "seconds_per_epoch")}
        extra.update(_validation_extra(metrics))
        rows.append(result_row(cfg.preset, "rnn", cfg.seed, metrics, extra))
        console.print(
            f"[{i}/{len(configs)}] {cfg.preset}{where} seed {cfg.seed}: F1 {metrics['f1']:.4f} "
            f"(FP {metrics['confusion'][0][1]}, FN {metrics['confusion'][1][0]}) in {metrics['fit_seconds']:.0f}s"
        )
    return rows


def _noise_rows(
    rates: Sequence[float],
    configs: list[RunConfig],
    splits: Splits,
    out: Path,
    data: DataInfo,
    progress: bool,
    console: Console,
    jobs: int,
    external: ExternalTest | None,
    baseline_seeds: Sequence[int],
    clean: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every model retrained per rate on the split with flipped TRAINING labels (seeded by the split seed,
    so all models see the same mislabelled sessions); rate 0 is the clean rows, not a second training."""
    rows: list[dict[str, Any]] = []
    for rate in rates:
        if rate == 0:
            rows.extend({"noise": 0.0, **row} for row in clean)
            continue
        noisy = splits._replace(train=flip_labels(splits.train, rate, configs[0].data.split_seed))
        new = _study_one_split(configs, noisy, out, data, progress, console, jobs, external, None, rate)
        for seed in baseline_seeds:
            new.extend(run_baselines(noisy, seed, out, data, configs[0].data, external, None, rate))
        rows.extend({"noise": rate, **row} for row in new)
    return rows


def _with_split_seed(cfg: RunConfig, split_seed: int) -> RunConfig:
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"split_seed": split_seed})})


def check_export_choice(which: str, presets: Sequence[str], baselines: bool) -> None:
    """Fail before training when ``--export`` names a model the study will not train."""
    names = [*presets, *(ZOO if baselines else ())]
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
    return run_path(Path(out), row["name"], row["seed"], row.get("split")), row


def run_path(out: Path, name: str, seed: int, split_seed: int | None = None, noise: float | None = None) -> Path:
    """``runs/<name>/seed-<k>``; with several splits ``runs/<name>/split-<s>/seed-<k>``; a label-noise run
    ``runs/<name>/noise-<rate>/seed-<k>`` so it never overwrites the clean one."""
    base = out / "runs" / name
    base = base if split_seed is None else base / f"split-{split_seed}"
    return (base if noise is None else base / f"noise-{noise:g}") / f"seed-{seed}"


def _train_all(
    configs: list[RunConfig],
    splits: Splits,
    out: Path,
    data: DataInfo,
    progress: bool,
    jobs: int,
    external: ExternalTest | None = None,
    tag: int | None = None,
    noise: float | None = None,
) -> Iterator[tuple[RunConfig, dict[str, Any]]]:
    """Yield (config, metrics) as runs finish; in order when ``jobs`` == 1."""
    if jobs <= 1 or len(configs) == 1:
        for cfg in configs:
            yield cfg, train_run(cfg, splits, run_path(out, cfg.preset, cfg.seed, tag, noise), data, progress, external)
        return
    threads = 1  # small RNNs are latency-bound: one thread per process beats shared threads
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool:  # fmt: skip
        futures = {pool.submit(train_run, cfg, splits, run_path(out, cfg.preset, cfg.seed, tag, noise), data, False,
                               external): cfg for cfg in configs}  # fmt: skip
        for future in as_completed(futures):
            yield futures[future], future.result()


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _header(
    data: DataInfo, sizes: dict[str, dict[str, int]], presets: Sequence[str], seeds: Sequence[int], seconds: float
) -> str:
    return (
        "# logsieve study\n\n"
        f"Data: `{data.source}` (sha256 `{data.sha256[:16]}…`, {data.sessions:,} sessions, "
        f"{data.anomalies:,} anomalous). "
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


def _external_note(external: ExternalTest) -> str:
    info = external.info
    return (
        f"\nExternal test set: `{info.source}` (sha256 `{info.sha256[:16]}…`, {info.sessions:,} sessions, "
        f"{info.anomalies:,} anomalous), scored by every run after fitting on the split above; *F1 external unseen* "
        "counts its sessions whose exact sequence is not in the training split.\n"
    )


def _splits_note(split_seeds: list[int], seeds: Sequence[int], per_split: list[dict[str, Any]]) -> str:
    """With K splits the sizes above are the first split's; the table is over splits x seeds."""
    ceilings = ", ".join(f"{p['label_conflicts']['counts']['f1_ceiling']:.4f}" for p in per_split)
    return (
        f"\nSplits: {len(split_seeds)} random splits (split seeds {split_seeds[0]}..{split_seeds[-1]}; sizes and "
        f"conflicts above are split {split_seeds[0]}'s) x {len(seeds)} seed(s): mean ± sd over all "
        f"{len(split_seeds) * len(seeds)} runs of a model. Count-twin F1 ceiling per split: {ceilings}.\n"
    )
