"""logsieve command line: thin typer commands, one per verb, grouped by what they are for; the work lives in
the packages. Each command imports its implementation lazily so `logsieve --help` stays fast."""

from __future__ import annotations

import sys

import typer

# isort: off  (the help lists panels in the order their commands register)
from logsieve.cli import data, report, study, use  # noqa: F401

# isort: on
from logsieve.cli.common import app, console
from logsieve.errors import LogsieveError

__all__ = ["app", "main"]


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
