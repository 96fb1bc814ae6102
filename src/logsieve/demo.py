"""`logsieve demo`: the whole product on data it makes itself, so a fresh machine needs nothing else.

simulate raw HDFS logs -> parse + sessionize -> explore -> train a preset (and the classical baselines)
-> evaluate on a held-out split -> one report directory.
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
from logsieve.simulator.simulate import simulate_logs
from logsieve.table import write_sessions
from logsieve.training.study import run_study


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
    step("trained, evaluated and compared (study/results.md)", t)

    summary = aggregate(results)
    report = _report(logs, explored.summary, summary, timings, blocks, seed)
    path = atomic_write_text(out / "README.md", report)
    console.print(f"report: [bold]{path}[/] (total {sum(timings.values()):.0f}s)")
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
        "Per-run details (config, metrics, history, training curve, weights): `study/runs/`.\n",
        "## Time per stage\n",
        *[f"- {name}: {sec:.1f}s" for name, sec in timings.items()],
        "",
    ]
    return "\n".join(lines)
