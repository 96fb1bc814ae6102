"""One entry point for ``--data``: session files (CSV, gz, Parquet, Loghub) and raw logs alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from logsieve.data.sessions import load_loghub, load_session_csv, load_session_parquet
from logsieve.errors import DataError

SESSION_SUFFIXES = (".csv", ".csv.gz", ".tsv")


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
        return _relabel(df, labels, path) if labels else df
    if path.is_file() and is_session_file(path):
        return load_loghub(path, labels)
    from logsieve.data.parse import parse_logs  # raw logs: imported lazily, heavier path

    return parse_logs([path], labels=labels)


def _relabel(df: pl.DataFrame, labels: str | Path, source: Path) -> pl.DataFrame:
    from logsieve.data.sessions import load_label_table, validate_sessions

    table = load_label_table(labels)
    return validate_sessions(df.drop("label").join(table, on="session_id", how="left"), source)


__all__ = ["DataInfo", "load_data", "load_with_info", "load_session_csv", "is_session_file"]
