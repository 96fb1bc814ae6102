"""One entry point for ``--data``: session files (CSV, gz, Parquet, Loghub) and raw logs alike, each turned
into the session table (``logsieve.table``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from logsieve.errors import DataError, LogsieveError
from logsieve.table import (
    ID_COLUMNS,
    check_unique_ids,
    first_bad_row,
    join_labels,
    parse_labels,
    pick_column,
    read_csv,
    validate_sessions,
)

if TYPE_CHECKING:
    from logsieve.parsing.spec import ParseOptions, ParseSpec

SESSION_SUFFIXES = (".csv", ".csv.gz", ".tsv")
EVENT_COLUMNS = ("events", "Features", "EventSequence", "sequence", "Sequence")


@dataclass(frozen=True)
class DataInfo:
    """Where sessions came from; recorded in every run's config.json so results can be regenerated."""

    source: str
    sha256: str
    sessions: int
    anomalies: int
    parse: ParseSpec | None = field(default=None, repr=False, compare=False)  # None: HDFS, the shipped templates

    @classmethod
    def of(cls, df: pl.DataFrame, source: str, sha256: str, parse: ParseSpec | None = None) -> DataInfo:
        return cls(source, sha256, df.height, int(df["label"].sum() or 0), parse)

    def record(self) -> dict[str, Any]:
        """What run records and reports keep as JSON: the fingerprint, and how raw lines were parsed in one line
        (the spec itself, with its miner state, goes to the run's parse.json: it can be large)."""
        out: dict[str, Any] = {"source": self.source, "sha256": self.sha256, "sessions": self.sessions,
                               "anomalies": self.anomalies}  # fmt: skip
        if self.parse is not None:
            out["parse"] = self.parse.describe()
        return out


def load_with_info(
    path: str | Path, labels: str | Path | None = None, raw: ParseOptions | ParseSpec | None = None
) -> tuple[pl.DataFrame, DataInfo]:
    """Load sessions and fingerprint the input file(s) (and the labels file, when given); see ``load_parsed``."""
    from logsieve.artifacts import sha256_path

    df, spec = load_parsed(path, labels, raw)
    sha = sha256_path(path) if labels is None else f"{sha256_path(path)}+{sha256_path(labels)}"
    return df, DataInfo.of(df, str(path), sha, spec)


def is_session_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".parquet") or name.endswith(SESSION_SUFFIXES)


def load_data(
    path: str | Path, labels: str | Path | None = None, raw: ParseOptions | ParseSpec | None = None
) -> pl.DataFrame:
    """Load sessions from ``path``; raw logs (file, .gz, directory) are parsed and sessionized (see ``load_parsed``).

    ``labels`` is an ``anomaly_label.csv`` (BlockId, Normal/Anomaly) joined on session id.
    """
    return load_parsed(path, labels, raw)[0]


def load_parsed(
    path: str | Path, labels: str | Path | None = None, raw: ParseOptions | ParseSpec | None = None
) -> tuple[pl.DataFrame, ParseSpec | None]:
    """Sessions of ``path`` and the spec they were parsed with (None: HDFS with the shipped templates).

    A Parquet file written by ``parse`` carries its spec. Raw logs are parsed as ``raw`` says: options
    (``--format``, a session rule, ...: templates are mined on all its lines) or a finished spec (a run's,
    applied without learning); without either they are HDFS. A session file given with a spec must have been
    parsed with the same templates, or its event ids would mean other things."""
    from logsieve.parsing.spec import ParseOptions

    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    options = raw if isinstance(raw, ParseOptions) and raw.given else None
    if path.is_file() and is_session_file(path):
        if options is not None:
            flags = " ".join(options.cli_args()[::2])
            raise LogsieveError(f"{path} is a session file: {flags} apply to raw logs (a session file written by "
                                "`logsieve parse` carries how it was parsed)")  # fmt: skip
        return _session_file(path, labels, None if isinstance(raw, ParseOptions) else raw)
    from logsieve.parsing.spec import apply_spec, parse_raw  # raw logs: imported lazily, heavier path

    if options is not None:
        res, spec = parse_raw([path], options, labels)
    elif raw is not None and not isinstance(raw, ParseOptions):
        res, spec = apply_spec([path], raw, labels), raw
    else:
        from logsieve.parsing.pipeline import parse_logs

        return parse_logs([path], labels=labels), None
    return res.sessions, None if spec.is_default else spec


def _session_file(
    path: Path, labels: str | Path | None, expected: ParseSpec | None
) -> tuple[pl.DataFrame, ParseSpec | None]:
    from logsieve.parsing.spec import hdfs_spec, read_parquet_spec

    spec = None
    if path.name.lower().endswith(".parquet"):
        df = load_session_parquet(path)
        df = validate_sessions(join_labels(df, labels), path) if labels else df
        spec = read_parquet_spec(path)
    else:
        df = load_loghub(path, labels)
    if expected is not None and (spec or hdfs_spec()).events_sha256() != expected.events_sha256():
        raise DataError(
            path,
            f"parsed with other templates than expected ({expected.describe()}), so its event ids "
            "mean other things; parse its raw logs with the same --templates, or pass the raw logs",
        )
    return df, spec


def parse_events(column: pl.Series, path: Path) -> pl.Series:
    """'E5 E22 E5' or '[E5,E22,E5]' or "['E5', 'E22']" -> list[str]; error on the first bad row."""
    text = column.str.strip_chars().str.strip_chars("[]").str.replace_all(r"['\"]", "").str.strip_chars(" ,;")
    if text.is_null().any():
        raise DataError(path, "missing event list", row=first_bad_row(text.is_null()))
    if (text == "").any():
        raise DataError(path, "empty event list", row=first_bad_row(text == ""))
    if text.str.contains(r"^[A-Za-z_]*\d+(?: [A-Za-z_]*\d+)*$").all():  # the usual "E5 E22 E5": split, done
        return text.str.split(" ")
    tokens = text.str.replace_all(r"[\s,;]+", " ").str.split(" ")
    ok = tokens.list.eval(pl.element().str.contains(r"^[A-Za-z_]*\d+$")).list.all()
    if not ok.all():
        row = first_bad_row(~ok)
        value = column[row - 2]
        raise DataError(path, f"unparsable event list {value[:60]!r} (events look like E5 or 5)", row=row)
    return tokens


def load_session_csv(path: str | Path) -> pl.DataFrame:
    """Session CSV: an id column, a label column and an events column (space- or comma-separated)."""
    path = Path(path)
    df = read_csv(path)
    id_col = pick_column(df, ID_COLUMNS, path, "session id")
    ev_col = pick_column(df, EVENT_COLUMNS, path, "events")
    label_col = (
        pick_column(df, ("label", "Label"), path, "label") if any(c.lower() == "label" for c in df.columns) else None
    )
    labels = parse_labels(df[label_col], path) if label_col else pl.Series("label", [None] * df.height, pl.Int8)
    ids = df[id_col]
    if ids.is_null().any():
        raise DataError(path, "missing session id", row=first_bad_row(ids.is_null()))
    check_unique_ids(ids, path, first_row=2)
    out = pl.DataFrame(
        {
            "session_id": ids,
            "label": labels,
            "events": parse_events(df[ev_col], path),
        }
    )
    return validate_sessions(out, path)


def load_loghub(traces: str | Path, labels: str | Path | None = None) -> pl.DataFrame:
    """Loghub HDFS_v1 preprocessed files: Event_traces.csv (BlockId, Label Success/Fail, Features, ...)
    and, optionally, anomaly_label.csv (BlockId, Label Normal/Anomaly), which then overrides the labels."""
    sessions = load_session_csv(traces)
    if labels is None:
        return sessions
    return validate_sessions(join_labels(sessions, labels), traces)


def load_session_parquet(path: str | Path) -> pl.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    return validate_sessions(read_parquet(path), path)


def read_parquet(path: Path) -> pl.DataFrame:
    """A Parquet file as stored (not yet validated), or one DataError line naming it."""
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(path, f"not a readable Parquet file ({str(exc).splitlines()[0]})") from None


__all__ = ["DataInfo", "load_data", "load_with_info", "load_session_csv", "is_session_file"]
