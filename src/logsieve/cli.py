"""logsieve command line: thin typer commands, one per verb; the work lives in the packages."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from logsieve.errors import LogsieveError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Find anomalous HDFS block sessions with recurrent neural networks.",
)
console = Console(stderr=True)

DataOpt = Annotated[Path, typer.Option("--data", "-d", help="Session file (CSV/gz/Parquet/Loghub) or raw logs (file, .gz, dir).")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output directory.")]


# --- commands -----------------------------------------------------------------------------------
# (each command imports its implementation lazily so `logsieve --help` stays fast)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Inside a command: a LogsieveError becomes one red line and exit code 2, also under CliRunner."""
    try:
        yield
    except LogsieveError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


ThreadsOpt = Annotated[
    int, typer.Option("--threads", help="Torch CPU threads; 1 is fastest for these small RNNs on a busy CPU.")
]


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config value, e.g. --set train.epochs=5 --set model.cell=gru."),
]
SearchOpt = Annotated[
    Optional[Path], typer.Option("--search-result", help="Search-result JSON for the *-grid* presets.")
]


@app.command("demo")
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

    _set_threads(1)
    with _user_errors():
        chosen = tuple(p.strip() for p in presets.split(",") if p.strip())
        run_demo(out, blocks, anomaly_rate, seed, chosen, progress, console)


@app.command("presets")
def presets_cmd() -> None:
    """List the nine study variants and their architectures."""
    from rich.table import Table

    from logsieve.config import preset_table, resolve_preset

    table = Table("preset", "cell", "layers", "hidden", "embed", "bidir", "pooling", "BN", "counts", "dropout",
                  "clip", "augment", "lr", "batch", "description", title="logsieve presets")
    for name, row in preset_table().items():
        c = resolve_preset(name)
        m, t = c.model, c.train
        clip = "none" if t.clip == "none" else f"{t.clip} {t.clip_threshold:g}"
        table.add_row(name, m.cell, str(m.num_layers), str(m.hidden_size), str(m.embed_dim),
                      "yes" if m.bidirectional else "no", m.pooling, "yes" if m.batch_norm else "no",
                      m.counts, f"{m.dropout:g}", clip, "yes" if t.augment.enabled else "no", f"{t.lr:g}",
                      str(t.batch_size), row["description"])
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command("train")
def train_cmd(
    data: DataOpt,
    out: OutOpt,
    preset: Annotated[str, typer.Option("--preset", "-p", help="See `logsieve presets`.")] = "improved",
    seed: Annotated[int, typer.Option("--seed", help="Initialisation, batch order, augmentation.")] = 0,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="anomaly_label.csv to join.")] = None,
    overrides: SetOpt = None,
    search_result: SearchOpt = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    threads: ThreadsOpt = 1,
) -> None:
    """Train one preset; writes a run directory (config, metrics, history, curve, weights) to OUT."""
    from logsieve.config import parse_overrides, resolve_preset
    from logsieve.data.load import load_with_info
    from logsieve.training.runs import make_splits, train_run

    _set_threads(threads)
    with _user_errors():
        cfg = resolve_preset(preset, seed, parse_overrides(overrides), search_result)
        sessions, info = load_with_info(data, labels)
        metrics = train_run(cfg, make_splits(sessions, cfg, data), out, info, progress)
    (tn, fp), (fn, tp) = metrics["confusion"]
    console.print(f"{preset}: test F1 {metrics['f1']:.4f}  precision {metrics['precision']:.4f}  "
                  f"recall {metrics['recall']:.4f}  (TP {tp}, FP {fp}, FN {fn}, TN {tn}) "
                  f"in {metrics['fit_seconds']:.0f}s -> [bold]{escape(str(out))}[/]", soft_wrap=True)


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", help="A run directory written by train/study.")],
    data: DataOpt,
    split: Annotated[str, typer.Option(help="all: every session of DATA; test: the run's own test split.")] = "all",
    labels: Annotated[Optional[Path], typer.Option("--labels", help="anomaly_label.csv to join.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the metrics here (JSON).")] = None,
) -> None:
    """Score labelled sessions with a trained model at its stored threshold."""
    import json

    from logsieve.training.runs import evaluate_run

    with _user_errors():
        metrics = evaluate_run(model, data, split=split, labels=labels, out=out)
    (tn, fp), (fn, tp) = metrics["confusion"]
    console.print(f"{metrics['n']:,} sessions: F1 {metrics['f1']:.4f}  precision {metrics['precision']:.4f}  "
                  f"recall {metrics['recall']:.4f}  PR-AUC {metrics['pr_auc']:.4f}  MCC {metrics['mcc']:.4f}  "
                  f"(TP {tp}, FP {fp}, FN {fn}, TN {tn})", soft_wrap=True)
    if out is None:
        print(json.dumps({k: v for k, v in metrics.items() if k != "unseen"}, indent=2))


@app.command("study")
def study_cmd(
    data: DataOpt,
    out: OutOpt,
    presets: Annotated[str, typer.Option(help="'all' or a comma-separated list of presets.")] = "all",
    seeds: Annotated[int, typer.Option(help="Number of seeds per preset (0..N-1).")] = 1,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="anomaly_label.csv to join.")] = None,
    overrides: SetOpt = None,
    search_result: SearchOpt = None,
    baselines: Annotated[bool, typer.Option(help="Add decision tree, random forest, logistic regression, count MLP.")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Runs trained at once (processes, 1 thread each).")] = 2,
) -> None:
    """Run the comparison study: results.csv, results.md (mean ± sd, sorted by F1), study.png, run dirs."""
    from logsieve.config import parse_overrides, preset_names
    from logsieve.data.load import load_with_info
    from logsieve.evaluation.report import aggregate
    from logsieve.training.study import run_study

    _set_threads(1)
    with _user_errors():
        chosen = preset_names() if presets == "all" else [p.strip() for p in presets.split(",") if p.strip()]
        if seeds < 1:
            raise LogsieveError("--seeds must be at least 1")
        sessions, info = load_with_info(data, labels)
        results = run_study(sessions, info, out, chosen, range(seeds), parse_overrides(overrides),
                            search_result, baselines, progress, console, jobs)
    best = aggregate(results).row(0, named=True)
    console.print(f"best: {best['name']} F1 {best['f1_mean']:.4f}; table: [bold]{escape(str(out / 'results.md'))}[/]",
                  soft_wrap=True)


@app.command("fetch")
def fetch_cmd(
    name: Annotated[str, typer.Argument(help="Dataset: hdfs-v1 (Loghub HDFS_v1, ~190 MB zip).")],
    dest: Annotated[Path, typer.Option("--dest", help="Folder for the archive and the unpacked dataset.")],
    url: Annotated[Optional[str], typer.Option("--url", help="Download from here instead (a mirror).")] = None,
    sha256: Annotated[Optional[str], typer.Option("--sha256", help="Expected sha256 of the archive.")] = None,
) -> None:
    """Download a public dataset: resumable, sha256-verified, unpacked atomically into DEST/NAME."""
    from logsieve.data.fetch import fetch

    with _user_errors():
        res = fetch(name, dest, url=url, sha256=sha256)
    console.print(f"sha256 {res.sha256}", highlight=False, soft_wrap=True)
    if res.verified:
        console.print("[green]checksum verified[/]")
    else:
        console.print("[yellow]checksum not verified[/] (none known; pass --sha256 to check)", soft_wrap=True)
    console.print(f"unpacked into [bold]{escape(str(res.folder))}[/] (archive: {escape(str(res.archive))})",
                  soft_wrap=True)


@app.command("explore")
def explore_cmd(
    data: DataOpt,
    out: OutOpt,
    split: Annotated[str, typer.Option("--split", help="random | chronological (needs start times).")] = "random",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split.")] = 0,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="anomaly_label.csv to join.")] = None,
) -> None:
    """Analyse a dataset before modelling: report.md, explore.json and plots in OUT."""
    import time

    from logsieve.data.explore import explore

    start = time.perf_counter()
    with _user_errors():
        res = explore(data, out, split=split, seed=seed, labels=labels)  # type: ignore[arg-type]
    s, sp = res.summary, res.summary["split"]
    seq = s["sequences"]
    rate = "no labels" if s["anomaly_rate"] is None else f"anomaly rate {100 * s['anomaly_rate']:.2f} %"
    console.print(f"{s['sessions']:,} sessions, {rate}, "
                  f"{seq['distinct']:,} distinct sequences (top one = {100 * seq['top1_share']:.1f} % of sessions), "
                  f"{s['both_labels']['sequences']} with both labels", soft_wrap=True)
    seen = ", ".join(f"{c} {100 * v['seen_share']:.1f} %" for c, v in sp["per_class"].items())
    console.print(f"test sessions whose sequence occurs in train ({sp['method']} split): {seen}", soft_wrap=True)
    console.print(f"report: [bold]{escape(str(Path(out) / 'report.md'))}[/] "
                  f"({len(res.paths)} files, {time.perf_counter() - start:.1f} s)", soft_wrap=True)


@app.command("simulate")
def simulate_cmd(
    out: OutOpt,
    blocks: Annotated[int, typer.Option("--blocks", "-n", help="Number of blocks (sessions); HDFS_v1 has 575,061.")] = 10_000,
    anomaly_rate: Annotated[float, typer.Option("--anomaly-rate", help="Share of anomalous blocks (HDFS_v1: 0.029).")] = 0.03,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same logs and sessions.")] = 0,
) -> None:
    """Write realistic raw HDFS logs: OUT/HDFS.log and OUT/anomaly_label.csv (BlockId, Normal/Anomaly)."""
    import time

    from logsieve.simulator.simulate import simulate_logs

    start = time.perf_counter()
    with _user_errors():
        res = simulate_logs(blocks, anomaly_rate, seed, out)
    seconds = time.perf_counter() - start
    console.print(f"{res.blocks:,} blocks ({res.anomalies:,} anomalous), {res.lines:,} lines in {seconds:.1f} s "
                  f"({res.lines / seconds:,.0f} lines/s)", soft_wrap=True)
    console.print(f"log: [bold]{escape(str(res.log))}[/] ({res.log.stat().st_size / 1e6:,.1f} MB), "
                  f"labels: [bold]{escape(str(res.labels))}[/]", soft_wrap=True)


@app.command("parse")
def parse_cmd(
    logs: Annotated[list[str], typer.Argument(help="Raw HDFS logs: files, .gz, directories, or - for stdin.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Session table to write (.parquet keeps times and line numbers; .csv).")],
    labels: Annotated[Optional[Path], typer.Option("--labels", help="anomaly_label.csv (BlockId, Normal/Anomaly).")] = None,
    templates: Annotated[str, typer.Option("--templates", help="hdfs (E1..E30) | mine (learn templates) | PATH of a saved miner JSON.")] = "hdfs",
    rejects: Annotated[Optional[Path], typer.Option("--rejects", help="Write rejected lines here (CSV: source, line, reason, text).")] = None,
    save_miner: Annotated[Optional[Path], typer.Option("--save-miner", help="With --templates mine: save the learned templates here.")] = None,
) -> None:
    """Turn raw HDFS logs into block sessions (one row per blk_ id), with labels if given."""
    import time

    from logsieve.parsing.pipeline import parse_logs_report
    from logsieve.table import write_sessions

    start = time.perf_counter()
    with _user_errors():
        res = parse_logs_report([Path(p) if p != "-" else p for p in logs], labels=labels, templates=templates, rejects=rejects)
        write_sessions(res.sessions, out)
        if save_miner is not None and res.miner is not None:
            res.miner.save(save_miner)
    seconds = time.perf_counter() - start
    df, st = res.sessions, res.stats
    labelled = df["label"].is_not_null().sum()
    console.print(f"{st.lines:,} lines in {seconds:.1f} s ({st.lines / max(seconds, 1e-9):,.0f} lines/s) -> "
                  f"{df.height:,} sessions, {labelled:,} labelled ({int(df['label'].sum() or 0):,} anomalous)", soft_wrap=True)
    colour = "yellow" if st.rejected else "green"
    console.print(f"[{colour}]{escape(st.summary())}[/]; {st.unblocked:,} lines name no block"
                  + (f"; rejects: [bold]{escape(str(rejects))}[/]" if rejects else ""), soft_wrap=True)
    console.print(f"sessions: [bold]{escape(str(out))}[/]", soft_wrap=True)


@app.command("search")
def search_cmd(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Search folder: study.db, trials.csv, search_result.json, plots.")],
    preset: Annotated[str, typer.Option("--preset", "-p", help="Base preset the space varies.")] = "improved",
    space: Annotated[str, typer.Option("--space", help="Built-in space (grid | wide | tiny) or a .toml/.yaml file.")] = "grid",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes (Ray tasks), one torch thread each.")] = 2,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Optuna RDB URL; default sqlite:///OUT/study.db.")] = None,
    study_name: Annotated[str, typer.Option("--study-name", help="Study within the storage.")] = "logsieve",
    trials: Annotated[Optional[int], typer.Option("--trials", help="Trial budget for TPE spaces (a grid runs every point).")] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Epoch budget per trial.")] = 12,
    patience: Annotated[int, typer.Option("--patience", help="Early stopping within a trial.")] = 3,
    pruner: Annotated[str, typer.Option("--pruner", help="halving (successive halving) | median | none.")] = "halving",
    min_epochs: Annotated[int, typer.Option("--min-epochs", help="First epoch at which a trial may be pruned (first rung of halving).")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Initialisation and sampler seed.")] = 0,
    backend: Annotated[str, typer.Option("--backend", help="process (local) | ray (needs the ray extra of logsieve).")] = "process",
    address: Annotated[Optional[str], typer.Option("--address", help="Ray cluster address (e.g. ray://head:10001).")] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="anomaly_label.csv to join.")] = None,
    overrides: SetOpt = None,
) -> None:
    """Search hyper-parameters on validation F1 (optuna; resumable; pruned); writes the *-grid* result file."""
    import shlex

    from logsieve.config import parse_overrides
    from logsieve.data.load import load_with_info
    from logsieve.search.runner import SearchSettings, run_search
    from logsieve.search.spaces import load_space

    _set_threads(1)
    with _user_errors():
        if pruner not in ("halving", "median", "none") or backend not in ("process", "ray"):
            raise LogsieveError("--pruner must be halving|median|none and --backend process|ray")
        settings = SearchSettings(preset, epochs, patience, pruner, min_epochs, trials, seed)  # type: ignore[arg-type]
        chosen = load_space(space, preset)
        sessions, info = load_with_info(data, labels)
        given = {"--data": data, "--labels": labels, "--preset": preset, "--space": space, "--jobs": jobs,
                 "--storage": storage, "--trials": trials, "--epochs": epochs, "--patience": patience,
                 "--pruner": pruner, "--min-epochs": min_epochs, "--seed": seed, "--out": out}  # fmt: skip
        command = " ".join(["logsieve search", *(f"{k} {shlex.quote(str(v))}" for k, v in given.items() if v is not None),
                            *(f"--set {shlex.quote(o)}" for o in overrides or [])])  # fmt: skip
        res = run_search(sessions, info, chosen, out, settings, storage, study_name, jobs, backend,  # type: ignore[arg-type]
                         address, parse_overrides(overrides), command, console)
    t = res["trials"]
    console.print(f"best of {t['complete']} complete / {t['pruned']} pruned trials in {res['seconds']:.0f} s: "
                  f"validation F1 {res['val_f1']:.4f} with {res['best_params']}", soft_wrap=True)
    console.print(f"result: [bold]{escape(str(out / 'search_result.json'))}[/] "
                  "(use with --search-result for the *-grid* presets)", soft_wrap=True)


def main() -> None:
    """Console entry point: user errors become one red line and exit code 2, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except LogsieveError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        console.print("[yellow]aborted[/]")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors and friends
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if isinstance(code, int) and code:  # without standalone mode, typer.Exit(n) comes back as a return value
        sys.exit(code)


if __name__ == "__main__":
    main()
