"""One entry point for ``--data``: session files (CSV, gz, Parquet, Loghub) and raw logs alike, each turned
into the session table (``logsieve.table``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from logsieve.errors import DataError
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

SESSION_SUFFIXES = (".csv", ".csv.gz", ".tsv")
EVENT_COLUMNS = ("events", "Features", "EventSequence", "sequence", "Sequence")


@dataclass(frozen=True)
class DataInfo:
    """Where sessions came from; recorded in every run's config.json so results can be regenerated."""

    source: str
    sha256: str
    sessions: int
    anomalies: int

    @classmethod
    def of(cls, df: pl.DataFrame, source: str, sha256: str) -> DataInfo:
        return cls(source, sha256, df.height, int(df["label"].sum() or 0))


def load_with_info(path: str | Path, labels: str | Path | None = None) -> tuple[pl.DataFrame, DataInfo]:
    """Load sessions and fingerprint the input file(s) (and the labels file, when given)."""
    from logsieve.artifacts import sha256_path

    df = load_data(path, labels)
    sha = sha256_path(path) if labels is None else f"{sha256_path(path)}+{sha256_path(labels)}"
    return df, DataInfo.of(df, str(path), sha)


def is_session_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".parquet") or name.endswith(SESSION_SUFFIXES)


def load_data(path: str | Path, labels: str | Path | None = None) -> pl.DataFrame:
    """Load sessions from ``path``; raw HDFS logs (file, .gz, directory) are parsed and sessionized.

    ``labels`` is an ``anomaly_label.csv`` (BlockId, Normal/Anomaly) joined on session id.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    if path.is_file() and path.name.lower().endswith(".parquet"):
        df = load_session_parquet(path)
        return validate_sessions(join_labels(df, labels), path) if labels else df
    if path.is_file() and is_session_file(path):
        return load_loghub(path, labels)
    from logsieve.parsing.pipeline import (
        parse_logs,  # raw logs: imported lazily, heavier path
    )

    return parse_logs([path], labels=labels)


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
