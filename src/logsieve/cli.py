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
) -> None:
    """Analyse a dataset before modelling: report.md, explore.json and plots in OUT."""
    import time

    from logsieve.evaluation.explore import explore

    start = time.perf_counter()
    with _user_errors():
        res = explore(data, out, split=split, seed=seed)  # type: ignore[arg-type]
    s, sp = res.summary, res.summary["split"]
    seq = s["sequences"]
    console.print(f"{s['sessions']:,} sessions, anomaly rate {100 * (s['anomaly_rate'] or 0):.2f} %, "
                  f"{seq['distinct']:,} distinct sequences (top one = {100 * seq['top1_share']:.1f} % of sessions), "
                  f"{s['both_labels']['sequences']} with both labels", soft_wrap=True)
    seen = ", ".join(f"{c} {100 * v['seen_share']:.1f} %" for c, v in sp["per_class"].items())
    console.print(f"test sessions whose sequence occurs in train ({sp['method']} split): {seen}", soft_wrap=True)
    console.print(f"report: [bold]{escape(str(Path(out) / 'report.md'))}[/] "
                  f"({len(res.paths)} files, {time.perf_counter() - start:.1f} s)", soft_wrap=True)


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
