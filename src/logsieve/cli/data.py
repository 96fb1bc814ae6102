"""Data verbs: simulate, fetch, parse, explore."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from logsieve.cli.common import (
    DataOpt,
    FormatOpt,
    LabelFieldOpt,
    LabelRegexOpt,
    LinesOpt,
    OutOpt,
    SessionKeyOpt,
    StepOpt,
    WindowOpt,
    app,
    check_outputs,
    console,
    raw_log_options,
    user_errors,
)
from logsieve.config import DEFAULT_DATA
from logsieve.parsing.options import ParseOptions

PANEL = "Data"


@app.command("simulate", rich_help_panel=PANEL)
def simulate_cmd(
    out: OutOpt,
    blocks: Annotated[
        int, typer.Option("--blocks", "-n", help="Number of blocks (sessions); HDFS_v1 has 575,061.")
    ] = 10_000,
    anomaly_rate: Annotated[
        float, typer.Option("--anomaly-rate", help="Share of anomalous blocks (HDFS_v1: 0.029).")
    ] = 0.03,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same logs and sessions.")] = 0,
) -> None:
    """Write realistic raw HDFS logs: OUT/HDFS.log and OUT/anomaly_label.csv (BlockId, Normal/Anomaly)."""
    import time

    from logsieve.simulator.simulate import simulate_logs

    start = time.perf_counter()
    with user_errors():
        check_outputs(folder=out)
        res = simulate_logs(blocks, anomaly_rate, seed, out)
    seconds = time.perf_counter() - start
    console.print(
        f"{res.blocks:,} blocks ({res.anomalies:,} anomalous), {res.lines:,} lines in {seconds:.1f} s "
        f"({res.lines / seconds:,.0f} lines/s)",
        soft_wrap=True,
    )
    console.print(
        f"log: [bold]{escape(str(res.log))}[/] ({res.log.stat().st_size / 1e6:,.1f} MB), "
        f"labels: [bold]{escape(str(res.labels))}[/]",
        soft_wrap=True,
    )


@app.command("fetch", rich_help_panel=PANEL)
def fetch_cmd(
    name: Annotated[str, typer.Argument(help="Dataset: hdfs-v1 (Loghub HDFS_v1, ~190 MB zip).")],
    dest: Annotated[Path, typer.Option("--dest", help="Folder for the archive and the unpacked dataset.")],
    url: Annotated[str | None, typer.Option("--url", help="Download from here instead (a mirror).")] = None,
    sha256: Annotated[
        str | None,
        typer.Option(
            "--sha256",
            help=(
                "Expected sha256 of the archive. logsieve ships no hash for hdfs-v1: without --sha256 the download "
                "is NOT verified (its sha256 is only printed)."
            ),
        ),
    ] = None,
) -> None:
    """Download a public dataset: resumable, unpacked atomically into DEST/NAME. The archive is verified only
    against a sha256 you give with --sha256; hdfs-v1 ships none, so without it the download is NOT verified."""
    from logsieve.data.fetch import DATASETS, fetch

    with user_errors():
        res = fetch(name, dest, url=url, sha256=sha256)
    console.print(f"sha256 {res.sha256}", highlight=False, soft_wrap=True)
    if res.verified:
        console.print("[green]checksum verified[/] (matches the expected sha256)")
    else:
        shipped = DATASETS[name].sha256 is not None
        why = "the shipped one is for the default URL" if shipped else f"logsieve ships none for {name}"
        console.print(
            f"[bold yellow]NOT verified:[/] no expected sha256 for {escape(res.archive.name)} ({why}); "
            "compare the sha256 above with a trusted source, or rerun with --sha256 HASH to check it",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"unpacked into [bold]{escape(str(res.folder))}[/] (archive: {escape(str(res.archive))})", soft_wrap=True
    )


@app.command("parse", rich_help_panel=PANEL)
def parse_cmd(
    logs: Annotated[list[str], typer.Argument(help="Raw logs: files, .gz, directories, or - for stdin.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Session table to write (.parquet keeps times and line numbers; .csv).")
    ],
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Per-session labels: CSV of id, label (anomaly_label.csv).")
    ] = None,
    templates: Annotated[
        str | None,
        typer.Option(
            "--templates",
            help="hdfs (E1..E30; HDFS only) | mine (learn templates) | PATH of a saved miner JSON. "
            "Default: hdfs for HDFS, mine otherwise.",
        ),
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Write rejected lines here (CSV: source, line, reason, text).")
    ] = None,
    save_miner: Annotated[
        Path | None, typer.Option("--save-miner", help="With --templates mine: save the learned templates here.")
    ] = None,
    log_format: FormatOpt = None,
    session_key: SessionKeyOpt = None,
    window: WindowOpt = None,
    lines: LinesOpt = None,
    step: StepOpt = None,
    label_regex: LabelRegexOpt = None,
    label_field: LabelFieldOpt = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="local (this machine) | ray (Ray Data over a cluster: fixed templates, sessions by block or "
            "--session-key; needs pip install 'logsieve[ray]' and the files readable by every node).",
        ),
    ] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="With --backend ray: join this Ray cluster (else a local one).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="With --backend ray and no --address: CPUs of the local Ray.")
    ] = None,
) -> None:
    """Turn raw logs into sessions (HDFS: one row per blk_ id; any format: by id, time window or run of lines),
    labelled per session (--labels) or per line (the format's label field, --label-field, --label-regex)."""
    import time

    from logsieve.parsing.spec import hdfs_spec, made_spec, spec_metadata
    from logsieve.table import write_sessions

    start = time.perf_counter()
    with user_errors():
        check_outputs(out, rejects, save_miner)
        on_ray = _on_ray(backend, address, workers)
        inputs: list[str | Path] = [Path(p) if p != "-" else p for p in logs]
        fast = _hdfs_fast_path(log_format, session_key, window, lines, step, label_regex, label_field)
        if fast:
            from logsieve.parsing.pipeline import parse_logs_report

            if on_ray:
                from logsieve.parsing.distributed import parse_logs_ray

                res = parse_logs_ray(inputs, labels, templates or "hdfs", rejects, address=address, workers=workers)
            else:
                res = parse_logs_report(inputs, labels=labels, templates=templates or "hdfs", rejects=rejects)
            spec = hdfs_spec(res.miner)
        else:
            from logsieve.parsing.format_pipeline import SessionRule, parse_format_report

            by_time_or_lines = window is not None or lines is not None
            key = session_key if session_key is not None or by_time_or_lines else _BLOCK_KEY  # HDFS's default
            rule = SessionRule.of(key, window, lines, step)
            fmt = log_format or "HDFS"
            default_templates = "hdfs" if fmt.upper() == "HDFS" else "mine"
            if on_ray:
                from logsieve.parsing.distributed import parse_format_ray

                res = parse_format_ray(
                    inputs, fmt, rule, labels=labels, label_regex=label_regex, label_field=label_field,
                    templates=templates or default_templates, rejects=rejects, address=address, workers=workers,
                )  # fmt: skip
            else:
                res = parse_format_report(
                    inputs, fmt, rule, labels=labels, label_regex=label_regex, label_field=label_field,
                    templates=templates or default_templates, rejects=rejects,
                )  # fmt: skip
            spec = made_spec(fmt, rule, label_regex, label_field, res.miner)
        write_sessions(res.sessions, out, metadata=spec_metadata(spec))  # .parquet: train/export know the format
        if save_miner is not None and res.miner is not None:
            res.miner.save(save_miner)
    seconds = time.perf_counter() - start
    df, st = res.sessions, res.stats
    labelled = df["label"].is_not_null().sum()
    console.print(
        f"{st.lines:,} lines in {seconds:.1f} s ({st.lines / max(seconds, 1e-9):,.0f} lines/s) -> "
        f"{df.height:,} sessions, {labelled:,} labelled ({int(df['label'].sum() or 0):,} anomalous)",
        soft_wrap=True,
    )
    colour = "yellow" if st.rejected else "green"
    console.print(
        f"[{colour}]{escape(st.summary())}[/]; {st.unblocked:,} lines name no "
        + ("block" if fast else "session")
        + (f"; rejects: [bold]{escape(str(rejects))}[/]" if rejects else ""),
        soft_wrap=True,
    )
    console.print(f"sessions: [bold]{escape(str(out))}[/]", soft_wrap=True)
    if out.suffix != ".parquet" and spec_metadata(spec):
        console.print("[yellow]note:[/] CSV keeps no record of the format and templates (train and export would take "
                      "it for HDFS); write .parquet to keep them", soft_wrap=True)  # fmt: skip


_BLOCK_KEY = r"blk_-?[0-9]+"  # HDFS's session key (parsing.sessionize.BLOCK_RE)


def _on_ray(backend: str, address: str | None, workers: int | None) -> bool:
    """--backend ray? A wrong backend, or Ray options without it, is one clear error."""
    from logsieve.errors import LogsieveError

    if backend not in ("local", "ray"):
        raise LogsieveError(f"--backend must be local or ray (got {backend!r})")
    if backend == "local" and (address is not None or workers is not None):
        raise LogsieveError("--address and --workers apply to --backend ray")
    return backend == "ray"


def _hdfs_fast_path(log_format: str | None, key: str | None, *others: object) -> bool:
    """HDFS with blk_ sessions and per-session labels runs the fast HDFS parser, exactly as before --format."""
    return (
        (log_format is None or log_format.upper() == "HDFS")
        and key in (None, _BLOCK_KEY)
        and all(o is None for o in others)
    )


@app.command("explore", rich_help_panel=PANEL)
@raw_log_options
def explore_cmd(
    data: DataOpt,
    out: OutOpt,
    split: Annotated[
        str, typer.Option("--split", help="random | chronological (needs start times).")
    ] = DEFAULT_DATA.split,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split.")] = DEFAULT_DATA.split_seed,
    labels: Annotated[Path | None, typer.Option("--labels", help="anomaly_label.csv to join.")] = None,
    raw: ParseOptions | None = None,  # the raw-log options (see raw_log_options)
) -> None:
    """Analyse a dataset before modelling: report.md, explore.json and plots in OUT."""
    import time

    from logsieve.data.explore import explore

    start = time.perf_counter()
    with user_errors():
        check_outputs(folder=out)
        res = explore(data, out, split=split, seed=seed, labels=labels, raw=raw)  # type: ignore[arg-type]
    s, sp = res.summary, res.summary["split"]
    seq = s["sequences"]
    rate = "no labels" if s["anomaly_rate"] is None else f"anomaly rate {100 * s['anomaly_rate']:.2f} %"
    console.print(
        f"{s['sessions']:,} sessions, {rate}, "
        f"{seq['distinct']:,} distinct sequences (top one = {100 * seq['top1_share']:.1f} % of sessions), "
        f"{s['both_labels']['sequences']} with both labels",
        soft_wrap=True,
    )
    seen = ", ".join(f"{c} {100 * v['seen_share']:.1f} %" for c, v in sp["per_class"].items())
    console.print(f"test sessions whose sequence occurs in train ({sp['method']} split): {seen}", soft_wrap=True)
    console.print(
        f"report: [bold]{escape(str(Path(out) / 'report.md'))}[/] "
        f"({len(res.paths)} files, {time.perf_counter() - start:.1f} s)",
        soft_wrap=True,
    )


@app.command("formats", rich_help_panel=PANEL)
def formats_cmd(
    name: Annotated[
        str | None, typer.Argument(help="Show one format (a shipped NAME or a FILE) in full instead of the list.")
    ] = None,
) -> None:
    """List the shipped log formats (for --format NAME), or show one: header pattern, masks, time and label."""
    from rich.table import Table

    from logsieve.parsing.formats import resolve_format, shipped_formats

    with user_errors():
        formats = list(shipped_formats().values()) if name is None else [resolve_format(name)]
    table = Table("name", "header pattern", "time", "label", "masks", "description", show_lines=False)
    for f in formats:
        time_s = "-" if f.time is None else f"{' '.join(f.time.fields)} ({f.time.format})"
        label = "-" if f.label is None else f"{f.label.field} (normal: {f.label.normal})"
        masks = str(len(f.masks)) if name is None else "\n".join(f"{m.pattern} -> {m.replacement}" for m in f.masks)
        table.add_row(
            escape(f.name), escape(f.pattern), escape(time_s), escape(label), escape(masks), escape(f.description)
        )
    console.print(table)
    if name is None:
        console.print("use one with --format NAME, or --format FILE (one header-pattern line, or a TOML table)")
