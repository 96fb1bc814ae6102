"""The one session table every stage shares: its schema, validation, labels and writing.

Columns: ``session_id`` str (unique), ``label`` Int8 (1 anomaly, 0 normal, null unknown), ``events`` list[str];
optional ``start_time``/``end_time`` datetime and ``line_numbers`` list[int]. Whatever produced a table (a
session file, the raw-log parser, the simulator), every later stage reads only this.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Literal

import polars as pl

from logsieve.artifacts import atomic_file
from logsieve.errors import DataError

SESSION_SCHEMA: dict[str, pl.DataType] = {
    "session_id": pl.String(),
    "label": pl.Int8(),
    "events": pl.List(pl.String()),
}
OPTIONAL_COLUMNS: dict[str, pl.DataType] = {
    "start_time": pl.Datetime("us"),
    "end_time": pl.Datetime("us"),
    "line_numbers": pl.List(pl.Int64()),
}

ID_COLUMNS = ("session_id", "session", "block_id", "BlockId", "blockid", "id")
LABEL_VALUES = {
    "0": 0, "1": 1, "normal": 0, "anomaly": 1, "success": 0, "fail": 1,
    "anomalous": 1, "abnormal": 1, "false": 0, "true": 1,
}  # fmt: skip


def validate_sessions(df: pl.DataFrame, source: object = "sessions") -> pl.DataFrame:
    """Check and normalise a session table; raise DataError naming what is wrong."""
    missing = [c for c in SESSION_SCHEMA if c not in df.columns]
    if missing:
        raise DataError(source, f"session table lacks column(s) {missing}; has {df.columns}")
    if df.height == 0:
        raise DataError(source, "no sessions (empty table)")
    out = df.with_columns(
        pl.col("session_id").cast(pl.String),
        pl.col("label").cast(pl.Int8),
        pl.col("events").cast(pl.List(pl.String)),
    )
    bad_label = out.filter(pl.col("label").is_not_null() & ~pl.col("label").is_in([0, 1]))
    if bad_label.height:
        raise DataError(source, f"label must be 0, 1 or empty; session {bad_label['session_id'][0]!r}")
    empty = out.filter(pl.col("events").list.len() == 0)
    if empty.height:
        raise DataError(source, f"session {empty['session_id'][0]!r} has no events")
    check_unique_ids(out["session_id"], source, first_row=1)
    keep = list(SESSION_SCHEMA) + [c for c in OPTIONAL_COLUMNS if c in out.columns]
    return out.select(keep)


def check_unique_ids(ids: pl.Series, source: object, first_row: int = 1) -> None:
    """A session id names one session: a repeated id would merge or duplicate sessions in every join.
    ``first_row`` is the number of the first id's row in the source (2 for a CSV with a header line)."""
    repeated = ids.is_duplicated()
    if repeated.any():
        first = ids.filter(repeated)[0]
        rows = (ids == first).arg_true().head(3).to_list()
        where = ", ".join(str(r + first_row) for r in rows)
        more = int(repeated.sum())
        raise DataError(source, f"session id {first!r} repeats (rows {where}); {more} rows share an id with "
                        "another row — each session needs its own id")  # fmt: skip


def require_labels(df: pl.DataFrame, source: object, *, both_classes: bool = True) -> pl.DataFrame:
    """Training needs every session labelled and, usually, both classes present."""
    unlabelled = df.filter(pl.col("label").is_null())
    if unlabelled.height:
        raise DataError(
            source,
            f"{unlabelled.height} session(s) have no label (first: {unlabelled['session_id'][0]!r}); "
            "training and evaluation need labelled sessions",
        )
    if both_classes and df["label"].n_unique() < 2:
        only = "anomalous" if df["label"][0] == 1 else "normal"
        raise DataError(source, f"only one class present (all {df.height} sessions are {only}); need both")
    return df


def sequence_keys(events: pl.Series, by: Literal["sequence", "counts"] = "sequence") -> pl.Series:
    """One string per session; equal keys = same exact sequence, or (``counts``) same multiset of events,
    i.e. the same count vector. Twins, duplicates and "seen in training" are all defined by these keys."""
    return (events.list.sort() if by == "counts" else events).list.join(" ")


# --- label files and joins --------------------------------------------------------------------------


def read_csv(path: Path) -> pl.DataFrame:
    """A CSV (or .gz) as strings, or one DataError naming the file."""
    if not path.exists():
        raise DataError(path, "file not found")
    if path.is_dir():
        raise DataError(path, "is a directory, expected a file")
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(path, f"cannot read ({exc})") from None
    if not raw.strip():
        raise DataError(path, "file is empty")
    try:
        return pl.read_csv(raw, infer_schema=False, quote_char='"')
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DataError(path, f"not a readable CSV ({first})") from None


def pick_column(df: pl.DataFrame, names: tuple[str, ...], path: Path, what: str) -> str:
    """The first of ``names`` that the table has (any case), or a DataError listing what it has."""
    lowered = {c.lower(): c for c in df.columns}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    raise DataError(path, f"no {what} column (expected one of {list(names)}); found columns {df.columns}")


def first_bad_row(mask: pl.Series) -> int:
    """1-based file line of the first True in ``mask`` (header is line 1)."""
    return int(mask.arg_true()[0]) + 2


def parse_labels(column: pl.Series, path: Path) -> pl.Series:
    """Map 0/1, Normal/Anomaly, Success/Fail (any case) to Int8; empty means unknown (null)."""
    text = column.str.strip_chars().str.to_lowercase()
    text = pl.select(pl.when(text == "").then(None).otherwise(text)).to_series()
    known = text.is_null() | text.is_in(list(LABEL_VALUES))
    if not known.all():
        row = first_bad_row(~known)
        raise DataError(
            path, f"unknown label value {column[row - 2]!r} (expected 0/1, Normal/Anomaly or Success/Fail)", row=row
        )
    return text.replace_strict(LABEL_VALUES, default=None, return_dtype=pl.Int8)


def load_label_table(path: str | Path) -> pl.DataFrame:
    """anomaly_label.csv: BlockId,Label (Normal/Anomaly) -> session_id, label (first row of an id wins)."""
    path = Path(path)
    df = read_csv(path)
    id_col = pick_column(df, ID_COLUMNS, path, "block id")
    label_col = pick_column(df, ("label",), path, "label")
    return pl.DataFrame({"session_id": df[id_col], "label": parse_labels(df[label_col], path)}).unique(
        "session_id", keep="first", maintain_order=True
    )


def join_labels(sessions: pl.DataFrame, labels: str | Path | pl.DataFrame | None) -> pl.DataFrame:
    """Replace the ``label`` column by the labels of a label file or (session_id, label) table, keeping the
    sessions' row order (splits pick rows by position); sessions the labels do not name get null."""
    if labels is None:
        return sessions.with_columns(label=pl.lit(None, pl.Int8))
    table = labels if isinstance(labels, pl.DataFrame) else load_label_table(labels)
    table = table.select("session_id", pl.col("label").cast(pl.Int8))
    order = sessions.columns if "label" in sessions.columns else [*sessions.columns, "label"]
    joined = sessions.drop("label", strict=False).join(table, on="session_id", how="left", maintain_order="left")
    return joined.select(order)


def write_sessions(df: pl.DataFrame, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write a table atomically: Parquet keeps every column (and ``metadata`` as key-value metadata: how the
    sessions were parsed); CSV keeps id, label and space-joined events."""
    with atomic_file(path) as tmp:
        if Path(path).suffix == ".parquet":
            df.write_parquet(tmp, metadata=metadata)
        else:
            df.with_columns(pl.col("events").list.join(" ")).select("session_id", "label", "events").write_csv(tmp)
    return Path(path)
