"""What every command shares: the typer app, the console, user-error handling and common options."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

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

DataOpt = Annotated[
    Path, typer.Option("--data", "-d", help="Session file (CSV/gz/Parquet/Loghub) or raw logs (file, .gz, dir).")
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output directory.")]


# --- commands -----------------------------------------------------------------------------------
# (each command imports its implementation lazily so `logsieve --help` stays fast)


@contextmanager
def user_errors() -> Iterator[None]:
    """Inside a command: a LogsieveError becomes one red line and exit code 2, also under CliRunner."""
    try:
        yield
    except LogsieveError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


ThreadsOpt = Annotated[
    int, typer.Option("--threads", help="Torch CPU threads; 1 is fastest for these small RNNs on a busy CPU.")
]


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def check_outputs(*files: Path | None, folder: Path | None = None) -> None:
    """Before any work: an output that cannot be written is one error line now, not a traceback after training."""
    from logsieve.artifacts import check_writable

    if folder is not None:
        check_writable(folder, folder=True)
    for path in files:
        if path is not None:
            check_writable(path)


def chosen_presets(text: str, allow_all: bool = True) -> list[str]:
    """--presets as a list, checked before any work: an empty or unknown choice is one error line."""
    from logsieve.config import preset_names

    known = preset_names()
    if allow_all and text.strip() == "all":
        return known
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    if not chosen:
        choices = ("'all' or " if allow_all else "") + f"a comma-separated list of: {', '.join(known)}"
        raise LogsieveError(f"--presets chose no preset; give {choices}")
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise LogsieveError(f"unknown preset(s) {', '.join(map(repr, unknown))}; choose from: {', '.join(known)}")
    return chosen


SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config value, e.g. --set train.epochs=5 --set model.cell=gru."),
]
SearchOpt = Annotated[Path | None, typer.Option("--search-result", help="Search-result JSON for the *-grid* presets.")]
