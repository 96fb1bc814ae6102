"""Using a trained model on new logs: export, verify, score, watch, serve."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from logsieve.cli.common import ThreadsOpt, app, check_outputs, console, set_threads, user_errors

PANEL = "Use a model on new logs"


@app.command("export", rich_help_panel=PANEL)
def export_cmd(
    model: Annotated[
        Path, typer.Option("--model", "-m", help="A run directory written by train or study (RNN or baseline).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle folder to write (replaced only if it is a bundle).")],
    templates: Annotated[
        str | None,
        typer.Option(
            "--templates",
            help="How raw lines became events: hdfs (E1..E30) | PATH of the saved miner JSON. Default: what the run "
            "recorded (data from `parse --format` or `--data RAW --format`: format, sessions and miner), else hdfs.",
        ),
    ] = None,
) -> None:
    """Package a trained model as a bundle: manifest (config, vocabulary, threshold, metrics, hashes), weights,
    normal profiles."""
    from logsieve.serving.bundle import export_bundle, load_bundle

    with user_errors():
        path = export_bundle(model, out, templates)
        b = load_bundle(path)
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    val, test = b.metrics["validation"], b.metrics["test"]
    console.print(
        f"{b.name} ({b.kind}): validation F1 {val['f1']:.4f}, test F1 {test['f1']:.4f}, threshold "
        f"{b.threshold:.4f} -> [bold]{escape(str(path))}[/] ({size / 1e3:,.0f} kB)",
        soft_wrap=True,
    )


@app.command("verify", rich_help_panel=PANEL)
def verify_cmd(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder written by export or study --export.")],
) -> None:
    """Check a bundle (format, file hashes, library versions, self-check scores) and say what it holds."""
    from logsieve.serving.bundle import load_bundle

    with user_errors():
        b = load_bundle(bundle)
    m = b.manifest
    console.print(
        f"ok: {b.name} ({b.kind}, seed {m['seed']}), {len(b.vocabulary)} events, threshold "
        f"{b.threshold:.4f}, templates {b.templates}, {b.normal_profiles.height} normal profiles, "
        f"raw lines: {b.parse.describe() if b.parse is not None else 'HDFS, blk_ sessions'}, "
        f"trained on {b.data.get('source')} (sha256 {str(b.data.get('sha256'))[:12]}…)",
        soft_wrap=True,
    )


@app.command("score", rich_help_panel=PANEL)
def score_cmd(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Raw logs in the bundle's format (files, .gz, directories, - for stdin) or session files "
            "(CSV/Parquet)."
        ),
    ],
    model: Annotated[Path, typer.Option("--model", "-m", help="A bundle folder (export or study --export).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write all rows here: .csv, .jsonl or .parquet. Default: a table on a terminal, CSV on a pipe.",
        ),
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="anomaly_label.csv to join; with labels the metrics are printed.")
    ] = None,
    only_alerts: Annotated[
        bool,
        typer.Option(
            "--only-alerts", help="Keep alerts only: anomalies and sessions with events never seen in training."
        ),
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Explain each alert: weighing events, nearest normal sessions, decision path (trees), raw lines.",
        ),
    ] = False,
    show_lines: Annotated[
        int | None,
        typer.Option(
            "--show-lines",
            min=0,
            help="Raw lines per explained alert, weighing events' lines first (implies --explain); default all.",
        ),
    ] = None,
    threads: ThreadsOpt = 1,
) -> None:
    """Score new logs or session files with a bundle: one row per session (score, verdict, new events, times, where)."""
    import time

    from logsieve.serving.bundle import load_bundle
    from logsieve.serving.output import check_suffix, emit, print_summary
    from logsieve.serving.scoring import score_inputs

    set_threads(threads)
    start = time.perf_counter()
    with user_errors():
        if out is not None:
            check_suffix(out)
            check_outputs(out)
        bundle = load_bundle(model)
        res = score_inputs(bundle, inputs, labels, explain or show_lines is not None, show_lines)
        emit(res, out, only_alerts)
    print_summary(console, res, time.perf_counter() - start, bundle.threshold, out)


@app.command("watch", rich_help_panel=PANEL)
def watch_cmd(
    logs: Annotated[
        list[str],
        typer.Argument(
            help="Log files to follow like tail -F (through rotation and truncation; they may appear later), "
            "or - for stdin."
        ),
    ],
    model: Annotated[Path, typer.Option("--model", "-m", help="A bundle folder (export or study --export).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Append alerts here as JSON lines (default stdout).")
    ] = None,
    all_sessions: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Write every session, not only alerts (anomalies and sessions with events never seen in training).",
        ),
    ] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Add an explanation to each alert.")] = False,
    idle: Annotated[
        str,
        typer.Option(
            "--idle",
            help="Close a session after this long without a line (log time; wall time once the log is quiet): "
            "90s, 10m, 4h.",
        ),
    ] = "24h",
    end_events: Annotated[
        str,
        typer.Option(
            "--end-events",
            help="Events that end a block (comma-separated; '' for none). Default: E23,E30, the NameNode deleting it "
            "(HDFS templates only; a mined bundle may name its own ids, M12).",
        ),
    ] = "E23,E30",
    end_grace: Annotated[
        str,
        typer.Option(
            "--end-grace",
            help="Close a session this long (log time) after its first end event (a time window: after its end), "
            "so late lines still join it.",
        ),
    ] = "30m",
    max_open: Annotated[
        int,
        typer.Option(
            "--max-open",
            min=1,
            help="Most open sessions kept (~0.3 KB each); the least recently active beyond it are scored as partial "
            "and always written (closed: evicted).",
        ),
    ] = 500_000,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="Registry of file positions and open sessions: a restart (even after kill -9) resumes where it "
            "stopped.",
        ),
    ] = None,
    checkpoint: Annotated[
        str, typer.Option("--checkpoint", help="How often the --state file is written (wall time).")
    ] = "5s",
    once: Annotated[
        bool, typer.Option("--once", help="Stop at the end of the input (like cat) instead of following it.")
    ] = False,
    from_end: Annotated[
        bool,
        typer.Option(
            "--from-end", help="Start files at their end (new lines only), unless --state knows where we were."
        ),
    ] = False,
    keep_open: Annotated[
        bool,
        typer.Option(
            "--keep-open",
            help="With --state: on Ctrl-C/SIGTERM keep open sessions for the next run instead of flushing them "
            "as partial.",
        ),
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", min=0.01, help="Seconds between looks at inputs that had nothing new.")
    ] = 0.25,
) -> None:
    """Follow growing logs (HDFS, or the bundle's own format) and write an alert (JSON line) per anomalous
    session as it closes."""
    from logsieve.serving.bundle import load_bundle
    from logsieve.serving.watch import Watcher, make_options, parse_duration

    with user_errors():
        check_outputs(out, state)
        options = make_options(
            idle=parse_duration(idle, "--idle"), end_grace=parse_duration(end_grace, "--end-grace"),
            end_events=tuple(e.strip() for e in end_events.split(",") if e.strip()), max_open=max_open,
            all_sessions=all_sessions, explain=explain, checkpoint=parse_duration(checkpoint, "--checkpoint"),
            poll=poll, once=once, from_end=from_end, keep_open=keep_open,
        )  # fmt: skip
        bundle = load_bundle(model)
        watcher = Watcher(bundle, logs, options, out=out, state=state,
                          say=lambda msg: console.print(f"watch: {escape(msg)}", soft_wrap=True,
                                                        highlight=False))  # fmt: skip
        watcher.run()


@app.command("serve", rich_help_panel=PANEL)
def serve_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", help="A bundle folder (export or study --export).")],
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. The service has no authentication: the default keeps it on this machine.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port).")] = 8000,
    max_body_bytes: Annotated[
        int | None,
        typer.Option("--max-body-bytes", min=1, help="Largest request body; larger ones get 413. Default 8 MiB."),
    ] = None,
    max_sessions: Annotated[
        int | None,
        typer.Option(
            "--max-sessions",
            min=1,
            help="Sessions per request (after grouping raw lines); more get 422. Default 10,000.",
        ),
    ] = None,
    max_events: Annotated[
        int | None, typer.Option("--max-events", min=1, help="Events per session; more get 422. Default 10,000.")
    ] = None,
    threads: ThreadsOpt = 1,
) -> None:
    """Serve a bundle over HTTP: POST /v1/score (sessions or raw lines), /healthz, /readyz, /metrics, /docs."""
    from logsieve.serving.app import bind, serve
    from logsieve.serving.bundle import load_bundle
    from logsieve.serving.limits import Limits

    set_threads(threads)
    given = {"max_body_bytes": max_body_bytes, "max_sessions": max_sessions, "max_events": max_events}
    with user_errors():
        limits = Limits(**{k: v for k, v in given.items() if v is not None})
        bundle = load_bundle(model)
        sock = bind(host, port)
    name = sock.getsockname()
    where = f"http://{f'[{name[0]}]' if ':' in name[0] else name[0]}:{name[1]}"
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning:[/] listening on {escape(host)}, beyond this machine; the service has no "
                      "authentication", soft_wrap=True)  # fmt: skip
    console.print(f"serving {escape(bundle.kind)} {escape(bundle.name)!r} (threshold {bundle.threshold:.4g}) on "
                  f"[bold]{where}[/]: POST /v1/score, docs {where}/docs, metrics /metrics; Ctrl-C stops",
                  soft_wrap=True, highlight=False)  # fmt: skip
    with suppress(KeyboardInterrupt):  # uvicorn has shut down gracefully, then re-raises Ctrl-C: the normal end
        serve(bundle, sock, limits)
    console.print("stopped")
