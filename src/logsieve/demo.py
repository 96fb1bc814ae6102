"""`logsieve demo`: the whole product on data it makes itself, so a fresh machine needs nothing else.

simulate raw HDFS logs -> parse + sessionize -> explore -> train a preset (and the classical baselines)
-> evaluate on a held-out split -> export the model with the best validation F1 as a bundle -> score a fresh
day of logs (another seed) with it -> one report directory, with the top alerts explained down to their lines.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from logsieve.artifacts import atomic_write_text, sha256_path
from logsieve.data.explore import explore
from logsieve.data.load import DataInfo
from logsieve.evaluation.report import aggregate, markdown_table
from logsieve.parsing.pipeline import parse_logs_report
from logsieve.serving.bundle import export_bundle, load_bundle
from logsieve.serving.scoring import ScoreResult, score_inputs
from logsieve.simulator.simulate import simulate_logs
from logsieve.table import write_sessions
from logsieve.training.study import pick_run, run_study

TOP_ALERTS = 5  # alerts shown with their explanation and raw lines in the report
ALERT_LINES = 12  # raw lines per alert in the report (weighing events' lines first)


def run_demo(
    out: str | Path,
    blocks: int = 20_000,
    anomaly_rate: float = 0.03,
    seed: int = 0,
    presets: tuple[str, ...] = ("improved",),
    progress: bool = True,
    console: Console | None = None,
) -> Path:
    """Run every stage into ``out``; returns the path of the summary report (``out/README.md``)."""
    out = Path(out)
    console = console or Console(stderr=True)
    timings: dict[str, float] = {}

    def step(name: str, start: float) -> None:
        timings[name] = time.perf_counter() - start
        console.print(f"[green]✓[/] {name} ({timings[name]:.1f}s)")

    t = time.perf_counter()
    logs = simulate_logs(blocks, anomaly_rate, seed, out / "logs")
    step(f"simulated {logs.lines:,} raw log lines of {logs.blocks:,} blocks ({logs.anomalies:,} anomalous)", t)

    t = time.perf_counter()
    parsed = parse_logs_report([logs.log], labels=logs.labels)
    sessions_path = write_sessions(parsed.sessions, out / "sessions.parquet")
    step(f"parsed and sessionized into {parsed.sessions.height:,} sessions "
         f"({parsed.stats.rejected:,} lines rejected)", t)  # fmt: skip

    t = time.perf_counter()
    explored = explore(sessions_path, out / "explore", seed=seed)
    step("explored the data (explore/report.md)", t)

    t = time.perf_counter()
    info = DataInfo.of(parsed.sessions, str(sessions_path), sha256_path(sessions_path))
    results = run_study(parsed.sessions, info, out / "study", list(presets), [seed], progress=progress, console=console)
    step("trained, evaluated and compared (study/results.md, study/report.html)", t)

    t = time.perf_counter()
    run_dir, chosen = pick_run(results, out / "study")
    bundle = load_bundle(export_bundle(run_dir, out / "bundle"))
    step(f"exported {chosen['name']} (best validation F1 {chosen['val_f1']:.4f}) as a bundle (bundle/)", t)

    t = time.perf_counter()
    day = simulate_logs(max(blocks // 4, 1_000), anomaly_rate, seed + 1, out / "new-day")
    scored = score_inputs(bundle, [day.log], labels=day.labels, explain=True, show_lines=ALERT_LINES)
    step(f"scored a fresh day of {day.lines:,} lines with the bundle: {int(scored.alert.sum()):,} alerts", t)

    summary = aggregate(results)
    report = _report(logs, explored.summary, summary, timings, blocks, seed)
    report += _new_day_report(chosen, day.lines, scored)
    path = atomic_write_text(out / "README.md", report)
    console.print(f"report: [bold]{path}[/] (total {sum(timings.values()):.0f}s); "
                  f"study page: [bold]{out / 'study' / 'report.html'}[/]")  # fmt: skip
    return path


def _report(logs, explored: dict, summary, timings: dict[str, float], blocks: int, seed: int) -> str:
    seq = explored["sequences"]
    lines = [
        "# logsieve demo report\n",
        f"Simulated HDFS cluster: {blocks:,} blocks, seed {seed}: `logs/HDFS.log` ({logs.lines:,} lines) and "
        f"`logs/anomaly_label.csv`; sessions in `sessions.parquet`.\n",
        f"Data: {explored['sessions']:,} sessions, {100 * (explored['anomaly_rate'] or 0):.2f} % anomalous, "
        f"{seq['distinct']:,} distinct sequences. Full analysis: `explore/report.md`.\n",
        "## Results on the held-out test split\n",
        markdown_table(summary),
        "The whole study on one page (tables, precision–recall curves, confusion matrices, training curves, "
        "label conflicts), a single file to open in any browser: [`study/report.html`](study/report.html).\n",
        "Per-run details (config, metrics, history, training curve, weights): `study/runs/`.\n",
        "## Time per stage\n",
        *[f"- {name}: {sec:.1f}s" for name, sec in timings.items()],
        "",
    ]
    return "\n".join(lines)


def _new_day_report(chosen: dict, lines: int, scored: ScoreResult) -> str:
    """The last part of the report: the bundle on logs it has never seen, and its top alerts explained."""
    m = scored.metrics or {}
    (tn, fp), (fn, tp) = m.get("confusion", [[0, 0], [0, 0]])
    table = scored.table.filter(scored.alert).sort("score", descending=True)
    out = [
        "\n## A fresh day of logs, scored with the exported bundle\n",
        f"The study's model with the best **validation** F1, `{chosen['name']}` (seed {chosen['seed']}), was "
        "exported to `bundle/` and used on a new simulated day (another seed): "
        f"`new-day/HDFS.log`, {lines:,} lines, {scored.table.height:,} block sessions. Same command by hand: "
        "`logsieve score --model bundle new-day/HDFS.log --labels new-day/anomaly_label.csv --explain`.\n",
        f"{table.height:,} alerts. Against the simulator's labels: F1 {m.get('f1', float('nan')):.4f}, "
        f"precision {m.get('precision', float('nan')):.4f}, recall {m.get('recall', float('nan')):.4f} "
        f"(TP {tp}, FP {fp}, FN {fn}, TN {tn}).\n",
        f"### Top {min(TOP_ALERTS, table.height)} alerts\n",
    ]
    for row in table.head(TOP_ALERTS).iter_rows(named=True):
        out += _alert_markdown(row, (scored.explanations or {}).get(row["session_id"]))
    return "\n".join(out) + "\n"


def _alert_markdown(row: dict, ex: dict | None) -> list[str]:
    """One alert: verdict, why (weighing events, nearest normal, decision path) and its raw lines."""
    new = " — holds an event never seen in training" if row["new_event"] else ""
    where = f"`{Path(row['source']).name}` lines {row['first_line']}–{row['last_line']}" if row["source"] else ""
    out = [f"**`{row['session_id']}`** score {row['score']:.3f} ({row['verdict']}{new}), {where}\n"]
    if ex is None:
        return out
    if ex["weighing"]:
        parts = [f"`{w['event']}` ×{w['count']} ({w['score_without']:.3f} without it)" for w in ex["weighing"]]
        out.append("- weighing events: " + "; ".join(parts))
    if ex["nearest_normal"] is not None:
        out.append(f"- nearest normal training blocks: {ex['nearest_normal']['text']}")
    if ex["decision_path"] is not None:
        out.append(f"- decision path: {ex['decision_path']['text']}")
    if ex["lines"]:
        out.append("\n```")
        for line in ex["lines"]:
            mark = ">" if line["weighing"] else " "
            text = "(not readable)" if line["text"] is None else line["text"]
            out.append(f"{mark} {Path(line['source']).name}:{line['line']} {line['event']:<4} {text}")
        if ex["lines_omitted"]:
            out.append(f"  … {ex['lines_omitted']:,} more line(s)")
        out.append("```")
    out.append("")
    return out
