"""Training and comparing models: demo, presets, train, evaluate, study, search."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from logsieve.cli.common import (
    DataOpt,
    OutOpt,
    SearchOpt,
    SetOpt,
    ThreadsOpt,
    app,
    check_outputs,
    chosen_presets,
    console,
    raw_log_options,
    set_threads,
    user_errors,
)
from logsieve.errors import LogsieveError
from logsieve.parsing.options import ParseOptions
from logsieve.search.settings import DEFAULT_SETTINGS, TRIALS_DB, TRIALS_NAME

if TYPE_CHECKING:
    from logsieve.data.load import DataInfo
    from logsieve.training.runs import ExternalTest

PANEL = "Train and compare"
TestOpt = Annotated[
    Path | None,
    typer.Option("--test", help="External labelled test set, scored after fitting in addition to the own split."),
]
TestLabelsOpt = Annotated[Path | None, typer.Option("--test-labels", help="anomaly_label.csv to join to --test.")]


@app.command("demo", rich_help_panel=PANEL)
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Report directory.")] = Path("logsieve-demo"),
    blocks: Annotated[int, typer.Option(help="Blocks (sessions) to simulate.")] = 20_000,
    anomaly_rate: Annotated[float, typer.Option(help="Share of anomalous blocks.")] = 0.03,
    seed: Annotated[int, typer.Option(help="Seed of simulation, split and training.")] = 0,
    presets: Annotated[str, typer.Option(help="Comma-separated presets to train.")] = "improved",
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Simulate HDFS logs, parse, explore, train, evaluate and write a report: no data needed."""
    from logsieve.demo import run_demo

    set_threads(1)
    with user_errors():
        check_outputs(folder=out)
        chosen = tuple(chosen_presets(presets, allow_all=False))
        run_demo(out, blocks, anomaly_rate, seed, chosen, progress, console)


@app.command("presets", rich_help_panel=PANEL)
def presets_cmd() -> None:
    """List the nine study variants and their architectures."""
    from rich.table import Table

    from logsieve.config import preset_table, resolve_preset

    table = Table(
        "preset",
        "cell",
        "layers",
        "hidden",
        "embed",
        "bidir",
        "pooling",
        "BN",
        "counts",
        "dropout",
        "clip",
        "augment",
        "lr",
        "batch",
        "description",
        title="logsieve presets",
    )
    for name, row in preset_table().items():
        c = resolve_preset(name)
        m, t = c.model, c.train
        clip = "none" if t.clip == "none" else f"{t.clip} {t.clip_threshold:g}"
        table.add_row(
            name,
            m.cell,
            str(m.num_layers),
            str(m.hidden_size),
            str(m.embed_dim),
            "yes" if m.bidirectional else "no",
            m.pooling,
            "yes" if m.batch_norm else "no",
            m.counts,
            f"{m.dropout:g}",
            clip,
            "yes" if t.augment.enabled else "no",
            f"{t.lr:g}",
            str(t.batch_size),
            row["description"],
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command("train", rich_help_panel=PANEL)
@raw_log_options
def train_cmd(
    data: DataOpt,
    out: OutOpt,
    preset: Annotated[str, typer.Option("--preset", "-p", help="See `logsieve presets`.")] = "improved",
    seed: Annotated[int, typer.Option("--seed", help="Initialisation, batch order, augmentation.")] = 0,
    labels: Annotated[Path | None, typer.Option("--labels", help="anomaly_label.csv to join.")] = None,
    overrides: SetOpt = None,
    search_result: SearchOpt = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    threads: ThreadsOpt = 1,
    test: TestOpt = None,
    test_labels: TestLabelsOpt = None,
    raw: ParseOptions | None = None,  # the raw-log options (see raw_log_options)
) -> None:
    """Train one preset; writes a run directory (config, metrics, history, curve, weights) to OUT."""
    from logsieve.config import parse_overrides, resolve_preset
    from logsieve.data.load import load_with_info
    from logsieve.training.runs import make_splits, train_run

    set_threads(threads)
    with user_errors():
        check_outputs(folder=out)
        cfg = resolve_preset(preset, seed, parse_overrides(overrides), search_result)
        sessions, info = load_with_info(data, labels, raw)
        external = _external(test, test_labels, info)
        metrics = train_run(cfg, make_splits(sessions, cfg, data), out, info, progress, external)
    (tn, fp), (fn, tp) = metrics["confusion"]
    console.print(
        f"{preset}: test F1 {metrics['f1']:.4f}  precision {metrics['precision']:.4f}  "
        f"recall {metrics['recall']:.4f}  (TP {tp}, FP {fp}, FN {fn}, TN {tn}) "
        f"in {metrics['fit_seconds']:.0f}s -> [bold]{escape(str(out))}[/]",
        soft_wrap=True,
    )
    if "external" in metrics:
        ext = metrics["external"]
        unseen = f"{ext['unseen']['f1']:.4f}" if ext.get("unseen") else "– (no unseen sessions)"
        console.print(f"external test {escape(str(test))}: F1 {ext['f1']:.4f}, unseen-sequence F1 {unseen}",
                      soft_wrap=True)  # fmt: skip


def _external(test: Path | None, test_labels: Path | None, info: DataInfo) -> ExternalTest | None:
    """--test loaded and checked before any training."""
    from logsieve.training.runs import load_external

    if test is None:
        if test_labels is not None:
            raise LogsieveError("--test-labels needs --test")
        return None
    return load_external(test, test_labels, info)


@app.command("evaluate", rich_help_panel=PANEL)
def evaluate_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", help="A run directory written by train/study.")],
    data: DataOpt,
    split: Annotated[str, typer.Option(help="all: every session of DATA; test: the run's own test split.")] = "all",
    labels: Annotated[Path | None, typer.Option("--labels", help="anomaly_label.csv to join.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the metrics here (JSON).")] = None,
) -> None:
    """Score labelled sessions with a trained model at its stored threshold."""
    import json

    from logsieve.training.runs import evaluate_run

    with user_errors():
        check_outputs(out)
        metrics = evaluate_run(model, data, split=split, labels=labels, out=out)
    (tn, fp), (fn, tp) = metrics["confusion"]
    console.print(
        f"{metrics['n']:,} sessions: F1 {metrics['f1']:.4f}  precision {metrics['precision']:.4f}  "
        f"recall {metrics['recall']:.4f}  PR-AUC {metrics['pr_auc']:.4f}  MCC {metrics['mcc']:.4f}  "
        f"(TP {tp}, FP {fp}, FN {fn}, TN {tn})",
        soft_wrap=True,
    )
    if out is None:
        print(json.dumps({k: v for k, v in metrics.items() if k != "unseen"}, indent=2))


@app.command("study", rich_help_panel=PANEL)
@raw_log_options
def study_cmd(
    data: DataOpt,
    out: OutOpt,
    presets: Annotated[str, typer.Option(help="'all' or a comma-separated list of presets.")] = "all",
    seeds: Annotated[int, typer.Option(help="Number of seeds per preset (0..N-1).")] = 1,
    labels: Annotated[Path | None, typer.Option("--labels", help="anomaly_label.csv to join.")] = None,
    overrides: SetOpt = None,
    search_result: SearchOpt = None,
    baselines: Annotated[
        bool, typer.Option(help="Add the zoo: count baselines (tree, forest, 1-NN, SVM, ...), iForest, PCA, DeepLog.")
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Runs trained at once (processes, 1 thread each).")] = 2,
    export: Annotated[
        str | None,
        typer.Option(
            "--export",
            help="Also write a bundle: 'best' (highest validation F1) or a preset/baseline name (its best seed).",
        ),
    ] = None,
    export_to: Annotated[
        Path | None, typer.Option("--export-to", help="Bundle folder for --export (default OUT/bundle).")
    ] = None,
    splits: Annotated[
        int,
        typer.Option(
            "--splits", help="Random splits (split seeds data.split_seed + 0..K-1); K > 1 adds paired records."
        ),
    ] = 1,
    test: TestOpt = None,
    test_labels: TestLabelsOpt = None,
    label_noise: Annotated[
        str | None,
        typer.Option(
            "--label-noise",
            help="Comma-separated rates (e.g. 0,0.01,0.05): retrain every model with that share of the TRAINING "
            "labels flipped (validation/test untouched); adds a label-noise table.",
        ),
    ] = None,
    raw: ParseOptions | None = None,  # the raw-log options (see raw_log_options)
) -> None:
    """Run the comparison study: results.csv, results.md (mean ± sd, sorted by F1), report.html, run dirs."""
    from logsieve.config import parse_overrides
    from logsieve.data.load import load_with_info
    from logsieve.evaluation.report import aggregate
    from logsieve.features.noise import noise_rates
    from logsieve.training.study import check_export_choice, pick_run, run_study

    set_threads(1)
    with user_errors():
        check_outputs(folder=out)
        chosen = chosen_presets(presets)
        if seeds < 1:
            raise LogsieveError("--seeds must be at least 1")
        if splits < 1:
            raise LogsieveError("--splits must be at least 1")
        rates = noise_rates(label_noise)
        if rates and splits > 1:
            raise LogsieveError("--label-noise runs on one split: drop --splits or --label-noise")
        bundle_dir = export_to or out / "bundle"
        if export is not None:
            from logsieve.serving.bundle import check_bundle_target

            check_export_choice(export, chosen, baselines)
            check_bundle_target(bundle_dir)
        sessions, info = load_with_info(data, labels, raw)
        external = _external(test, test_labels, info)
        results = run_study(
            sessions,
            info,
            out,
            chosen,
            range(seeds),
            parse_overrides(overrides),
            search_result,
            baselines,
            progress,
            console,
            jobs,
            external,
            splits,
            rates,
        )
        if export is not None:
            from logsieve.serving.bundle import export_bundle

            run_dir, row = pick_run(results, out, export)
            export_bundle(run_dir, bundle_dir)
    best = aggregate(results).row(0, named=True)
    console.print(
        f"best: {best['name']} F1 {best['f1_mean']:.4f}; table: [bold]{escape(str(out / 'results.md'))}[/], "
        f"page: [bold]{escape(str(out / 'report.html'))}[/]",
        soft_wrap=True,
    )
    if export is not None:
        console.print(
            f"bundle: {row['name']} seed {row['seed']} (validation F1 {row['val_f1']:.4f}, test F1 "
            f"{row['f1']:.4f}) -> [bold]{escape(str(bundle_dir))}[/]",
            soft_wrap=True,
        )


@app.command("search", rich_help_panel=PANEL)
@raw_log_options
def search_cmd(
    data: DataOpt,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Search folder: study.db, trials.csv, search_result.json, plots.")
    ],
    preset: Annotated[
        str, typer.Option("--preset", "-p", help="Base preset the space varies.")
    ] = DEFAULT_SETTINGS.preset,
    space: Annotated[
        str, typer.Option("--space", help="Built-in space (grid | wide | tiny) or a .toml/.yaml file.")
    ] = "grid",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes (Ray tasks), one torch thread each.")] = 2,
    storage: Annotated[
        str | None, typer.Option("--storage", help=f"Optuna RDB URL; default sqlite:///OUT/{TRIALS_DB}.")
    ] = None,
    study_name: Annotated[
        str, typer.Option("--study-name", help="Trial store (optuna study) within the storage.")
    ] = TRIALS_NAME,
    trials: Annotated[
        int | None, typer.Option("--trials", help="Trial budget for TPE spaces (a grid runs every point).")
    ] = DEFAULT_SETTINGS.n_trials,
    epochs: Annotated[int, typer.Option("--epochs", help="Epoch budget per trial.")] = DEFAULT_SETTINGS.epochs,
    patience: Annotated[
        int, typer.Option("--patience", help="Early stopping within a trial.")
    ] = DEFAULT_SETTINGS.patience,
    pruner: Annotated[
        str, typer.Option("--pruner", help="halving (successive halving) | median | none.")
    ] = DEFAULT_SETTINGS.pruner,
    min_epochs: Annotated[
        int, typer.Option("--min-epochs", help="First epoch at which a trial may be pruned (first rung of halving).")
    ] = DEFAULT_SETTINGS.min_epochs,
    seed: Annotated[int, typer.Option("--seed", help="Initialisation and sampler seed.")] = DEFAULT_SETTINGS.seed,
    backend: Annotated[
        str, typer.Option("--backend", help="process (local) | ray (needs the ray extra of logsieve).")
    ] = "process",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (e.g. ray://head:10001).")
    ] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="anomaly_label.csv to join.")] = None,
    overrides: SetOpt = None,
    test: Annotated[Path | None, typer.Option("--test", help="Refused: a search never looks at a test set.")] = None,
    raw: ParseOptions | None = None,  # the raw-log options (see raw_log_options)
) -> None:
    """Search hyper-parameters on validation F1 (optuna; resumable; pruned); writes the *-grid* result file."""
    import shlex

    from logsieve.config import parse_overrides
    from logsieve.data.load import load_with_info
    from logsieve.search.runner import SearchSettings, run_search
    from logsieve.search.spaces import load_space

    set_threads(1)
    with user_errors():
        if test is not None:
            raise LogsieveError(
                f"--test {test}: a search never looks at a test set (it tunes on --data's validation split); "
                "pass --test to `logsieve study` or `logsieve train` with the result instead"
            )
        check_outputs(folder=out)
        if pruner not in ("halving", "median", "none") or backend not in ("process", "ray"):
            raise LogsieveError("--pruner must be halving|median|none and --backend process|ray")
        settings = SearchSettings(preset, epochs, patience, pruner, min_epochs, trials, seed)  # type: ignore[arg-type]
        chosen = load_space(space, preset)
        sessions, info = load_with_info(data, labels, raw)
        given = {"--data": data, "--labels": labels, "--preset": preset, "--space": space, "--jobs": jobs,
                 "--storage": storage, "--trials": trials, "--epochs": epochs, "--patience": patience,
                 "--pruner": pruner, "--min-epochs": min_epochs, "--seed": seed, "--out": out}  # fmt: skip
        command = " ".join(["logsieve search",
                            *(f"{k} {shlex.quote(str(v))}" for k, v in given.items() if v is not None),
                            *map(shlex.quote, raw.cli_args() if raw else []),
                            *(f"--set {shlex.quote(o)}" for o in overrides or [])])  # fmt: skip
        res = run_search(
            sessions,
            info,
            chosen,
            out,
            settings,
            storage,
            study_name,
            jobs,
            backend,  # type: ignore[arg-type]
            address,
            parse_overrides(overrides),
            command,
            console,
        )
    t = res["trials"]
    console.print(
        f"best of {t['complete']} complete / {t['pruned']} pruned trials in {res['seconds']:.0f} s: "
        f"validation F1 {res['val_f1']:.4f} with {res['best_params']}",
        soft_wrap=True,
    )
    console.print(
        f"result: [bold]{escape(str(out / 'search_result.json'))}[/] "
        "(use with --search-result for the *-grid* presets)",
        soft_wrap=True,
    )
    if res.get("interrupted"):
        raise typer.Exit(130)  # the shell's code for a stop by signal: the result is best-so-far, not final
