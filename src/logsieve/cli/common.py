"""What every command shares: the typer app, the console, user-error handling and common options."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from logsieve.errors import LogsieveError
from logsieve.parsing.options import ParseOptions

R = TypeVar("R")

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

# --- raw logs of any format: parse, and --data of train/study/explore/search --------------------------------------
RAW = "Raw logs of any format"
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="Log format: a shipped NAME (`logsieve formats`) or a FILE.", rich_help_panel=RAW),
]
SessionKeyOpt = Annotated[
    str | None,
    typer.Option("--session-key", help="Sessions by the ids this regex finds in a line (one group: its text).",
                 rich_help_panel=RAW),
]  # fmt: skip
WindowOpt = Annotated[
    str | None,
    typer.Option("--window", help="Sessions by time windows of this length (60s, 5m, 1h).", rich_help_panel=RAW),
]
LinesOpt = Annotated[int | None, typer.Option("--lines", help="Sessions of N consecutive lines.", rich_help_panel=RAW)]
StepOpt = Annotated[
    str | None,
    typer.Option("--step", help="Slide --window by this duration, or --lines by this many lines.",
                 rich_help_panel=RAW),
]  # fmt: skip
LabelRegexOpt = Annotated[
    str | None,
    typer.Option("--label-regex", help="Per-line labels: a line matching this regex is anomalous.",
                 rich_help_panel=RAW),
]  # fmt: skip
LabelFieldOpt = Annotated[
    str | None,
    typer.Option("--label-field", help="Per-line labels from this format field (anything but - is anomalous).",
                 rich_help_panel=RAW),
]  # fmt: skip
TemplatesOpt = Annotated[
    str | None,
    typer.Option(
        "--templates",
        help="hdfs (E1..E30; HDFS only) | mine (learn templates from the text of every line, no labels) | PATH of "
        "a saved miner JSON. Default: hdfs for HDFS, mine otherwise.",
        rich_help_panel=RAW,
    ),
]


RAW_OPTIONS = {
    "log_format": FormatOpt, "session_key": SessionKeyOpt, "window": WindowOpt, "lines": LinesOpt, "step": StepOpt,
    "label_regex": LabelRegexOpt, "label_field": LabelFieldOpt, "templates": TemplatesOpt,
}  # fmt: skip


def raw_log_options(command: Callable[..., R]) -> Callable[..., R]:
    """Give a command the raw-log options above in place of its ``raw`` parameter, which then receives them as
    one ``ParseOptions``: defined once here, for every command that reads ``--data`` (typer knows no option
    groups, so the decorated function shows typer the options in its signature)."""
    signature = inspect.signature(command, eval_str=True)
    kept = [p for name, p in signature.parameters.items() if name != "raw"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
             for name, annotation in RAW_OPTIONS.items()]  # fmt: skip

    @functools.wraps(command)
    def with_raw_options(*args: Any, **kwargs: Any) -> R:
        given = {name: kwargs.pop(name, None) for name in RAW_OPTIONS}
        given["format"] = given.pop("log_format")
        return command(*args, raw=ParseOptions(**given), **kwargs)

    with_raw_options.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    with_raw_options.__annotations__ = {p.name: p.annotation for p in [*kept, *added]}
    return with_raw_options


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
