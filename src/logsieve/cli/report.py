"""`logsieve report`: rebuild a study's one-page HTML report from the study folder alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from logsieve.cli.common import app, check_outputs, console, user_errors
from logsieve.cli.study import PANEL


@app.command("report", rich_help_panel=PANEL)
def report_cmd(
    study: Annotated[Path, typer.Argument(help="A study folder (the --out of `logsieve study`).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Page to write (default STUDY/report.html).")] = None,
) -> None:
    """Rebuild a study's self-contained HTML page (tables, PR curves, confusion matrices, training curves)."""
    from logsieve.evaluation.html_report import write_html_report

    with user_errors():
        check_outputs(out)
        path = write_html_report(study, out)
    console.print(f"report: [bold]{escape(str(path))}[/]", soft_wrap=True)
