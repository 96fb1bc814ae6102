"""Raw logs of any format -> the session table: read with a ``LogFormat``, template each line, group by ONE
session rule (an id in the line, time windows or runs of lines) and label per session or per line.

The HDFS fast path (``pipeline.parse_logs_report``) stays as it is and is what ``parse`` runs for HDFS with
``blk_`` sessions; this is the general path. It holds the whole line table in memory (fine for the samples and
logs of a few million lines); mining learns in line order, as on the HDFS path.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from logsieve.config import Frozen
from logsieve.errors import DataError, LogsieveError
from logsieve.parsing.formats import CONTENT, LogFormat, resolve_format
from logsieve.parsing.lines import RejectStats
from logsieve.parsing.pipeline import FILES_SCHEMA, MINE, NO_TEMPLATE, ParseResult
from logsieve.parsing.reader import read_format_files
from logsieve.parsing.session_keys import check_key, key_sessions, with_keys
from logsieve.parsing.templates import HDFS
from logsieve.parsing.windows import line_windows, parse_duration, time_windows
from logsieve.table import join_labels

if TYPE_CHECKING:
    from logsieve.parsing.mining import TemplateMiner

MAX_MALFORMED_SHARE = 0.5  # a file where most lines do not fit is another format, not a few bad lines


class SessionRule(Frozen):
    """How lines become sessions: exactly one of ``key`` (regex), ``window`` (duration) or ``lines`` (count);
    ``step`` makes windows slide (a duration for ``window``, a count for ``lines``)."""

    key: str | None = None
    window: str | None = None
    lines: int | None = None
    step: str | None = None

    @classmethod
    def of(
        cls, key: str | None = None, window: str | None = None, lines: int | None = None, step: str | None = None
    ) -> SessionRule:
        """Check the options (one clear error, no pydantic trace) and build the rule."""
        options = (("--session-key", key), ("--window", window), ("--lines", lines))
        given = [name for name, value in options if value is not None]
        if len(given) > 1:
            raise LogsieveError(f"choose ONE session rule: {' and '.join(given)} were both given")
        if not given:
            raise LogsieveError("no session rule: give --session-key REGEX, --window DURATION or --lines N")
        if step is not None and key is not None:
            raise LogsieveError("--step slides windows; it does not apply to --session-key")
        if key is not None:
            check_key(key)
        if window is not None:
            parse_duration(window, "--window")
            if step is not None:
                parse_duration(step, "--step")
        if lines is not None:
            if lines < 1:
                raise LogsieveError(f"--lines must be at least 1 (got {lines})")
            if step is not None and not (step.strip().isdigit() and int(step) >= 1):
                raise LogsieveError(f"--step with --lines is a number of lines, at least 1 (got {step!r})")
        return cls(key=key, window=window, lines=lines, step=step)


def parse_format_report(
    paths: Iterable[str | Path],
    fmt: str | Path | LogFormat,
    rule: SessionRule,
    labels: str | Path | None = None,
    label_regex: str | None = None,
    label_field: str | None = None,
    templates: str | Path | TemplateMiner = MINE,
    rejects: str | Path | None = None,
) -> ParseResult:
    """Sessions of raw logs in format ``fmt`` grouped by ``rule``.

    Labels: ``labels`` (CSV session id -> label; wins over per-line labels), else per line: ``label_regex`` (a line
    matching it is anomalous), ``label_field`` (a field of the format; a value other than the format's normal one,
    ``-`` by default, is anomalous) or the format's own label field. A session is anomalous when any line is.
    ``templates``: ``mine`` (learn with the format's masks and Drain parameters), a saved miner JSON or miner (its
    ids, no learning), or ``hdfs`` (the shipped E1..E30; HDFS format only).
    """
    paths = list(paths)
    if not paths:
        raise DataError("(inputs)", "no log files given")
    fmt = resolve_format(fmt)
    line_label = _line_label(fmt, label_regex, label_field)  # every option is checked before the long part
    label_table = None
    if labels is not None:
        from logsieve.table import load_label_table

        label_table = load_label_table(labels)
    miner, fit = _templates(templates, fmt)
    table, stats, files = read_format_files(paths, fmt, keep_rejects=rejects is not None)
    _check_fit(files, fmt)
    if line_label is not None:
        table = table.with_columns(label=line_label)
    table = _events(table, miner, fit, stats)
    if table.height == 0:
        raise DataError(", ".join(map(str, paths)), f"no line fits format {fmt.name} ({stats.summary()})")
    sessions = _sessions(table, rule, fmt, stats)
    if label_table is not None:
        sessions = join_labels(sessions, label_table)
    if rejects is not None:
        stats.write(rejects)
    return ParseResult(sessions, stats, miner, files.select(list(FILES_SCHEMA)))


def _line_label(fmt: LogFormat, label_regex: str | None, label_field: str | None) -> pl.Expr | None:
    """The per-line label expression (True = anomalous), or None to keep the format's own (if any)."""
    if label_regex is not None and label_field is not None:
        raise LogsieveError("choose one per-line label: --label-regex or --label-field, not both")
    if label_regex is not None:
        try:
            pl.Series([""]).str.contains(label_regex)
        except pl.exceptions.ComputeError as exc:
            raise LogsieveError(f"--label-regex {label_regex!r} does not compile: {str(exc).splitlines()[0]}") from None
        return pl.col("line").str.contains(label_regex)
    if label_field is not None:
        if label_field not in fmt.field_names or label_field == CONTENT:
            fields = [f for f in fmt.field_names if f != CONTENT]
            raise LogsieveError(f"--label-field {label_field}: format {fmt.name} has no such field (it has {fields})")
        normal = fmt.label.normal if fmt.label is not None and fmt.label.field == label_field else "-"
        return pl.col(label_field).fill_null(normal) != normal
    return None


def _templates(templates: str | Path | TemplateMiner, fmt: LogFormat) -> tuple[TemplateMiner | None, bool]:
    """(miner or None for the shipped HDFS templates, learn?)."""
    from logsieve.parsing.mining import TemplateMiner

    if isinstance(templates, TemplateMiner):
        return templates, False
    if str(templates) == MINE:
        return TemplateMiner(**fmt.miner_kwargs()), True
    if str(templates) == HDFS:
        if fmt.name != "HDFS":
            raise LogsieveError(f"--templates {HDFS} are HDFS's; for format {fmt.name} use mine or a saved miner")
        return None, False
    path = Path(templates)
    if not path.is_file():
        raise DataError(path, f"--templates must be {MINE!r}, {HDFS!r} or a saved miner JSON file; file not found")
    return TemplateMiner.load(path), False


def _check_fit(files: pl.DataFrame, fmt: LogFormat) -> None:
    """A file where most lines are malformed is in another format (mixed formats in one directory?)."""
    share = files["malformed"] / files["lines"].clip(lower_bound=1)
    bad = files.filter(share > MAX_MALFORMED_SHARE)
    if bad.height:
        src, _, n, m = bad.row(0)
        more = f" (and {bad.height - 1} more file(s))" if bad.height > 1 else ""
        raise DataError(
            src,
            f"{m:,} of {n:,} lines ({100 * m / n:.0f} %) do not fit format {fmt.name}{more}: a different format? "
            "parse each format separately",
        )


def _events(table: pl.DataFrame, miner: TemplateMiner | None, fit: bool, stats: RejectStats) -> pl.DataFrame:
    """Add ``event`` (template id); with the shipped HDFS templates, lines none matches are ``no_template`` rejects."""
    if miner is not None:
        contents = table[CONTENT]
        return table.with_columns(event=miner.fit_transform(contents) if fit else miner.transform(contents))
    from logsieve.parsing.templates import TemplateMatcher

    table = table.with_columns(event=TemplateMatcher().match(table["line"]))
    for src, n, text in table.filter(pl.col("event").is_null()).select("source", "file_line", "line").iter_rows():
        stats.add(src, n, NO_TEMPLATE, text)
    return table.filter(pl.col("event").is_not_null())


def _sessions(table: pl.DataFrame, rule: SessionRule, fmt: LogFormat, stats: RejectStats) -> pl.DataFrame:
    if rule.key is not None:
        keyed = with_keys(table, rule.key)
        has = keyed["keys"].list.len() > 0
        if not has.any():
            raise LogsieveError(f"--session-key {rule.key!r} matches no line of the input ({stats.lines:,} lines read)")
        stats.unblocked += int((~has).sum())
        return key_sessions(keyed.filter(has))
    if rule.window is not None:
        if "timestamp" not in table.columns:
            raise LogsieveError(f"--window needs times, but format {fmt.name} does not say how to read them (time)")
        return time_windows(table, rule.window, rule.step)
    assert rule.lines is not None
    return line_windows(table, rule.lines, None if rule.step is None else int(rule.step))
