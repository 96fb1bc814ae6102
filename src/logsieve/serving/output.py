"""Writing and showing ``score`` results: a file chosen by suffix (atomic), CSV on a pipe, a table on a terminal.

Explanations travel as a nested ``explanation`` object in JSONL and as JSON text in CSV and Parquet (their
cells are flat); rows that are not alerts have none. On a terminal the table and the explanation blocks are
capped (``TERMINAL_ROWS``, alerts first) so that a big log does not scroll for minutes; files get every row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import polars as pl
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from logsieve.artifacts import atomic_file
from logsieve.errors import LogsieveError

if TYPE_CHECKING:
    from logsieve.serving.scoring import ScoreResult

SUFFIXES = (".csv", ".jsonl", ".parquet")
TERMINAL_ROWS = 200


def emit(res: ScoreResult, out: Path | None, only_alerts: bool) -> None:
    """The rows (alerts only if asked) to ``out`` by suffix, else a table on a terminal, else CSV on stdout."""
    table = res.table.filter(res.alert) if only_alerts else res.table
    if out is not None:
        write_scores(table, out, res.explanations)
    elif sys.stdout.isatty():
        stdout = Console()
        print_table(stdout, table, res.alert.filter(res.alert) if only_alerts else res.alert)
        if res.explanations:
            print_explanations(stdout, table, res.explanations)
    else:
        write_csv_stdout(table, res.explanations)


def print_summary(console: Console, res: ScoreResult, seconds: float, threshold: float, out: Path | None) -> None:
    """What was scored (to stderr): counts of alerts, rejected lines of raw logs, metrics when labelled."""
    t = res.table
    anomalies, new = int((t["verdict"] == "anomaly").sum()), int(t["new_event"].sum())
    console.print(f"{t.height:,} sessions in {seconds:.1f} s: {int(res.alert.sum()):,} alerts ({anomalies:,} anomaly "
                  f"verdicts, {new:,} with events never seen in training) at threshold {threshold:.4f}"
                  + (f" -> [bold]{escape(str(out))}[/]" if out is not None else ""), soft_wrap=True)  # fmt: skip
    if res.stats is not None:
        st = res.stats
        console.print(f"[{'yellow' if st.rejected else 'green'}]{escape(st.summary())}[/]; "
                      f"{st.unblocked:,} lines name no block", soft_wrap=True)  # fmt: skip
    if res.metrics is not None:
        m = res.metrics
        (tn, fp), (fn, tp) = m["confusion"]
        console.print(f"{m['n']:,} labelled sessions: F1 {m['f1']:.4f}  precision {m['precision']:.4f}  "
                      f"recall {m['recall']:.4f}  PR-AUC {m['pr_auc']:.4f}  MCC {m['mcc']:.4f}  "
                      f"(TP {tp}, FP {fp}, FN {fn}, TN {tn})", soft_wrap=True)  # fmt: skip


def check_suffix(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise LogsieveError(f"--out {path}: the name must end in {', '.join(SUFFIXES)} (it picks the format)")


def with_explanations(table: pl.DataFrame, explanations: dict[str, dict[str, Any]] | None) -> pl.DataFrame:
    """Add ``explanation`` (JSON text; null for rows without one) when explanations were asked for."""
    if explanations is None:
        return table
    text = [json.dumps(explanations[s], ensure_ascii=False) if s in explanations else None for s in table["session_id"]]
    return table.with_columns(explanation=pl.Series(text, dtype=pl.String))


def write_scores(table: pl.DataFrame, path: Path, explanations: dict[str, dict[str, Any]] | None = None) -> Path:
    """One row per session in the format of ``path``'s suffix, written atomically."""
    check_suffix(path)
    suffix = path.suffix.lower()
    with atomic_file(path) as tmp:
        if suffix == ".jsonl" and explanations is not None:
            with open(tmp, "w", encoding="utf-8") as f:
                _jsonl(table, explanations, f)
        elif suffix == ".jsonl":
            table.write_ndjson(tmp)
        elif suffix == ".parquet":
            with_explanations(table, explanations).write_parquet(tmp)
        else:
            with_explanations(table, explanations).write_csv(tmp)
    return path


def _jsonl(table: pl.DataFrame, explanations: dict[str, dict[str, Any]], f: IO[str]) -> None:
    for row in table.to_dicts():
        row["explanation"] = explanations.get(row["session_id"])
        f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def write_csv_stdout(table: pl.DataFrame, explanations: dict[str, dict[str, Any]] | None = None) -> None:
    sys.stdout.write(with_explanations(table, explanations).write_csv())
    sys.stdout.flush()


# --- terminal -----------------------------------------------------------------------------------------------


def print_table(console: Console, table: pl.DataFrame, alert: pl.Series, limit: int = TERMINAL_ROWS) -> None:
    """The readable table: alerts first when it has to be cut, else in input order."""
    shown = table if table.height <= limit else pl.concat([table.filter(alert), table.filter(~alert)]).head(limit)
    labelled = "label" in table.columns
    out = Table(title="logsieve score", box=box.SIMPLE_HEAD, pad_edge=False)
    out.add_column("session", overflow="fold")  # short columns keep their width; long ones fold on a narrow screen
    for name, width in (("score", 6), ("verdict", 7), ("events", 6), ("new", 6)):
        out.add_column(name, min_width=width, no_wrap=True, justify="right" if name in ("score", "events") else "left")
    out.add_column("start", overflow="fold")
    if labelled:
        out.add_column("label", min_width=7, no_wrap=True)
    out.add_column("where", overflow="fold")
    for r in shown.iter_rows(named=True):
        verdict = "[bold red]anomaly[/]" if r["verdict"] == "anomaly" else "[green]normal[/]"
        new = f"[yellow]{r['unknown_events']} new[/]" if r["new_event"] else ""
        start = "" if r["start_time"] is None else r["start_time"].strftime("%m-%d %H:%M:%S")
        label = [] if not labelled else ["" if r["label"] is None else ("anomaly" if r["label"] else "normal")]
        out.add_row(escape(r["session_id"]), f"{r['score']:.4f}", verdict, str(r["events"]), new, start, *label,
                    escape(_where(r)))  # fmt: skip
    console.print(out)
    if table.height > limit:
        console.print(f"showing {limit} of {table.height:,} rows (alerts first); use --out FILE.csv|.jsonl|.parquet "
                      "or a pipe for all", style="dim", soft_wrap=True)  # fmt: skip


def _where(r: dict[str, Any]) -> str:
    if r.get("source") is None:
        return ""
    name = Path(r["source"]).name
    return f"{name}:{r['first_line']}" + (f"–{r['last_line']}" if r["last_line"] != r["first_line"] else "")


def print_explanations(
    console: Console, table: pl.DataFrame, explanations: dict[str, dict[str, Any]], limit: int = TERMINAL_ROWS
) -> None:
    """One block per explained session: weighing events, nearest normal, decision path, raw lines."""
    rows = table.filter(pl.col("session_id").is_in(list(explanations))).head(limit)
    for r in rows.iter_rows(named=True):
        ex = explanations[r["session_id"]]
        new = f", [yellow]{r['unknown_events']} event(s) never seen in training[/]" if r["new_event"] else ""
        where = f"; {escape(_where(r))}" if r.get("source") else ""
        console.print(f"\n[bold]{escape(r['session_id'])}[/] — {r['verdict']}, score {r['score']:.4f} "
                      f"(threshold {r['threshold']:.4f}){new}{where}", soft_wrap=True)  # fmt: skip
        for line in explanation_lines(ex):
            console.print("  " + line, soft_wrap=True, highlight=False)
    if len(explanations) > limit:
        console.print(f"\n{len(explanations) - limit:,} more explanations: use --out FILE.jsonl", style="dim")


def explanation_lines(ex: dict[str, Any]) -> list[str]:
    """An explanation as a few lines of rich markup (user text escaped)."""
    out = []
    if ex["weighing"]:
        parts = [
            f"{escape(w['event'])} ×{w['count']}{' (never seen in training)' if w['unknown'] else ''}: "
            f"{w['score_without']:.3f} without it{' [green](normal)[/]' if w['flips'] else ''}"
            for w in ex["weighing"]
        ]
        out.append("[bold]weighing events:[/] " + "; ".join(parts))
    else:
        out.append("[bold]weighing events:[/] none alone (leaving any one event type out keeps the score)")
    if ex["nearest_normal"] is not None:
        out.append("[bold]nearest normal:[/] " + escape(ex["nearest_normal"]["text"]))
    if ex["decision_path"] is not None:
        out.append("[bold]decision path:[/] " + escape(ex["decision_path"]["text"]))
    if ex["lines"] is not None:
        out.append("[bold]lines:[/]")
        for line in ex["lines"]:
            mark = "[red]▶[/]" if line["weighing"] else " "
            text = "(not readable)" if line["text"] is None else line["text"]
            out.append(f"{mark} [dim]{escape(Path(line['source']).name)}:{line['line']}[/] {escape(line['event'])}  "
                       f"{escape(text)}")  # fmt: skip
        if ex["lines_omitted"]:
            out.append(f"  … {ex['lines_omitted']:,} more line(s) (--show-lines)")
    return out
