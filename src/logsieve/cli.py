"""logsieve command line: thin typer commands, one per verb; the work lives in the packages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

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


def main() -> None:
    """Console entry point: user errors become one red line and exit code 2, never a traceback."""
    try:
        app(standalone_mode=False)
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


if __name__ == "__main__":
    main()
