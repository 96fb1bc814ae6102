"""The one session table every stage shares, and loaders that produce it from session files.

Columns (see DESIGN.md): ``session_id`` str, ``label`` Int8 (1 anomaly, 0 normal, null unknown),
``events`` list[str], optional ``start_time``/``end_time`` datetime, optional ``line_numbers`` list[int].
"""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl

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
EVENT_COLUMNS = ("events", "Features", "EventSequence", "sequence", "Sequence")
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
    keep = list(SESSION_SCHEMA) + [c for c in OPTIONAL_COLUMNS if c in out.columns]
    return out.select(keep)


def require_labels(df: pl.DataFrame, source: object, *, both_classes: bool = True) -> pl.DataFrame:
    """Training needs every session labelled and, usually, both classes present."""
    unlabelled = df.filter(pl.col("label").is_null())
    if unlabelled.height:
        raise DataError(
            source, f"{unlabelled.height} session(s) have no label (first: {unlabelled['session_id'][0]!r}); "
            "training and evaluation need labelled sessions"
        )
    if both_classes and df["label"].n_unique() < 2:
        only = "anomalous" if df["label"][0] == 1 else "normal"
        raise DataError(source, f"only one class present (all {df.height} sessions are {only}); need both")
    return df


def _read_csv(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise DataError(path, "file not found")
    if path.is_dir():
        raise DataError(path, "is a directory, expected a session file")
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


def _pick(df: pl.DataFrame, names: tuple[str, ...], path: Path, what: str) -> str:
    lowered = {c.lower(): c for c in df.columns}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    raise DataError(path, f"no {what} column (expected one of {list(names)}); found columns {df.columns}")


def _first_bad(mask: pl.Series) -> int:
    """1-based file line of the first True in ``mask`` (header is line 1)."""
    return int(mask.arg_true()[0]) + 2


def parse_events(column: pl.Series, path: Path) -> pl.Series:
    """'E5 E22 E5' or '[E5,E22,E5]' or "['E5', 'E22']" -> list[str]; error on the first bad row."""
    text = column.str.strip_chars().str.strip_chars("[]").str.replace_all(r"['\"]", "").str.strip_chars(" ,;")
    if text.is_null().any():
        raise DataError(path, "missing event list", row=_first_bad(text.is_null()))
    if (text == "").any():
        raise DataError(path, "empty event list", row=_first_bad(text == ""))
    tokens = text.str.replace_all(r"[\s,;]+", " ").str.split(" ")
    ok = tokens.list.eval(pl.element().str.contains(r"^[A-Za-z_]*\d+$")).list.all()
    if not ok.all():
        row = _first_bad(~ok)
        value = column[row - 2]
        raise DataError(path, f"unparsable event list {value[:60]!r} (events look like E5 or 5)", row=row)
    return tokens


def parse_labels(column: pl.Series, path: Path) -> pl.Series:
    """Map 0/1, Normal/Anomaly, Success/Fail (any case) to Int8; empty means unknown (null)."""
    text = column.str.strip_chars().str.to_lowercase()
    text = pl.select(pl.when(text == "").then(None).otherwise(text)).to_series()
    known = text.is_null() | text.is_in(list(LABEL_VALUES))
    if not known.all():
        row = _first_bad(~known)
        raise DataError(
            path, f"unknown label value {column[row - 2]!r} (expected 0/1, Normal/Anomaly or Success/Fail)", row=row
        )
    return text.replace_strict(LABEL_VALUES, default=None, return_dtype=pl.Int8)


def load_session_csv(path: str | Path) -> pl.DataFrame:
    """Session CSV: an id column, a label column and an events column (space- or comma-separated)."""
    path = Path(path)
    df = _read_csv(path)
    id_col = _pick(df, ID_COLUMNS, path, "session id")
    ev_col = _pick(df, EVENT_COLUMNS, path, "events")
    label_col = _pick(df, ("label", "Label"), path, "label") if any(c.lower() == "label" for c in df.columns) else None
    labels = parse_labels(df[label_col], path) if label_col else pl.Series("label", [None] * df.height, pl.Int8)
    ids = df[id_col]
    if ids.is_null().any():
        raise DataError(path, "missing session id", row=_first_bad(ids.is_null()))
    out = pl.DataFrame({
        "session_id": ids,
        "label": labels,
        "events": parse_events(df[ev_col], path),
    })
    return validate_sessions(out, path)


def load_loghub(traces: str | Path, labels: str | Path | None = None) -> pl.DataFrame:
    """Loghub HDFS_v1 preprocessed files: Event_traces.csv (BlockId, Label Success/Fail, Features, ...)
    and, optionally, anomaly_label.csv (BlockId, Label Normal/Anomaly), which then overrides the labels."""
    sessions = load_session_csv(traces)
    if labels is None:
        return sessions
    label_table = load_label_table(labels)
    joined = sessions.drop("label").join(label_table, on="session_id", how="left")
    return validate_sessions(joined.select(list(SESSION_SCHEMA)), traces)


def load_label_table(path: str | Path) -> pl.DataFrame:
    """anomaly_label.csv: BlockId,Label (Normal/Anomaly) -> session_id, label."""
    path = Path(path)
    df = _read_csv(path)
    id_col = _pick(df, ID_COLUMNS, path, "block id")
    label_col = _pick(df, ("label",), path, "label")
    return pl.DataFrame({"session_id": df[id_col], "label": parse_labels(df[label_col], path)}).unique(
        "session_id", keep="first", maintain_order=True
    )


def load_session_parquet(path: str | Path) -> pl.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        df = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(path, f"not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    return validate_sessions(df, path)


def write_sessions(df: pl.DataFrame, path: str | Path) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves a half-written table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        df.write_parquet(tmp)
    else:
        df.with_columns(pl.col("events").list.join(" ")).select("session_id", "label", "events").write_csv(tmp)
    tmp.replace(path)
    return path
