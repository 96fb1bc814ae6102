"""Score sessions with a bundle: one row per session with its verdict, where it came from, and whether it
holds events the model never saw in training.

``score_table`` is the one scoring function behind ``score``, ``watch`` and ``serve``. A session holding an
event never seen in training gets ``new_event = true`` but keeps the model's verdict: how a model treats an
unseen event depends on its kind (an RNN reads one "unknown" token, a count model one "unseen" column), and
the flag says so without overruling it. An *alert* (``ALERT``) is an anomaly verdict or a new event: that is
what ``--only-alerts`` keeps and ``--explain`` explains, so a new kind of line is never silently filtered out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from logsieve.errors import DataError, LogsieveError
from logsieve.serving.bundle import Bundle
from logsieve.table import sequence_keys

if TYPE_CHECKING:
    from logsieve.parsing.lines import RejectStats
    from logsieve.parsing.mining import TemplateMiner
    from logsieve.parsing.spec import ParseSpec

SCORE_SCHEMA: dict[str, pl.DataType] = {
    "session_id": pl.String(),
    "score": pl.Float64(),
    "verdict": pl.String(),  # "anomaly" (score >= threshold) | "normal"
    "threshold": pl.Float64(),
    "events": pl.Int64(),  # events in the session
    "unknown_events": pl.Int64(),  # of those, events never seen in training
    "new_event": pl.Boolean(),  # unknown_events > 0
    "start_time": pl.Datetime("us"),
    "end_time": pl.Datetime("us"),
    "source": pl.String(),  # raw logs: file of the session's first line
    "first_line": pl.Int64(),  # raw logs: first and last of the session's lines in that file (1-based)
    "last_line": pl.Int64(),
}
PASSED_THROUGH = ("start_time", "end_time", "source", "first_line", "last_line")  # null when the input lacks them
ALERT = (pl.col("verdict") == "anomaly") | pl.col("new_event")


def score_table(bundle: Bundle, sessions: pl.DataFrame) -> pl.DataFrame:
    """Session table (``session_id``, ``events``; optional columns of PASSED_THROUGH) -> one row per session, in
    order, with exactly the columns of ``SCORE_SCHEMA``. Never raises on an unseen event.

    Each distinct sequence is scored once (HDFS: ~90k sessions, a few thousand sequences) and mapped back."""
    events = sessions["events"].cast(pl.List(pl.String))
    keys = sequence_keys(events)
    first = keys.is_first_distinct()
    distinct = pl.DataFrame({"key": keys.filter(first), "events": events.filter(first)})
    known = pl.Series(bundle.vocabulary, dtype=pl.String).implode()
    scores = np.asarray(bundle.model.score(distinct), dtype=float) if distinct.height else np.zeros(0)
    lookup = distinct.select(
        "key",
        score=pl.Series(scores, dtype=pl.Float64),
        events=pl.col("events").list.len().cast(pl.Int64),
        unknown_events=pl.col("events").list.eval((~pl.element().is_in(known)).cast(pl.Int64)).list.sum(),
    )
    table = pl.DataFrame({"session_id": sessions["session_id"].cast(pl.String), "key": keys}).join(
        lookup, on="key", how="left", maintain_order="left"
    )
    extra = [
        sessions[c].cast(SCORE_SCHEMA[c]) if c in sessions.columns else pl.lit(None, SCORE_SCHEMA[c]).alias(c)
        for c in PASSED_THROUGH
    ]
    return table.with_columns(
        *extra,
        verdict=pl.when(pl.col("score") >= bundle.threshold).then(pl.lit("anomaly")).otherwise(pl.lit("normal")),
        threshold=pl.lit(bundle.threshold, pl.Float64),
        unknown_events=pl.col("unknown_events").fill_null(0).cast(pl.Int64),
        new_event=pl.col("unknown_events").fill_null(0) > 0,
    ).select(list(SCORE_SCHEMA))


# --- inputs -------------------------------------------------------------------------------------------------


@dataclass
class ScoreInput:
    """Sessions to score, and for raw logs what is needed to read their lines back and report rejects."""

    sessions: pl.DataFrame
    files: pl.DataFrame | None = None  # ParseResult.files (raw logs only)
    stats: RejectStats | None = None  # raw logs only


def load_inputs(bundle: Bundle, inputs: Sequence[str | Path], labels: str | Path | None = None) -> ScoreInput:
    """Session files (CSV/.csv.gz/Parquet, labels optional) or raw logs (files, .gz, directories, ``-``),
    not both; raw logs are parsed as the bundle's parse spec says (format, templates without learning, session
    rule, per-line labels if the format has them) and located (source, first/last line)."""
    from logsieve.data.load import is_session_file

    if not inputs:
        raise DataError("(inputs)", "no input given")
    kinds = {str(p) != "-" and Path(p).is_file() and is_session_file(Path(p)) for p in inputs}
    if len(kinds) > 1:
        raise LogsieveError("give either session files (CSV/Parquet) or raw logs, not both in one call")
    if kinds == {True}:
        sessions = _session_files([Path(p) for p in inputs], bundle)
        if labels is not None:
            from logsieve.table import join_labels

            sessions = join_labels(sessions, labels)
        return ScoreInput(sessions)
    from logsieve.parsing.pipeline import locate_sessions
    from logsieve.parsing.spec import apply_spec

    paths = [p if str(p) == "-" else Path(p) for p in inputs]
    res = apply_spec(paths, bundle_spec(bundle), labels, where=f"bundle {bundle.name!r}")
    return ScoreInput(locate_sessions(res.sessions, res.files), res.files, res.stats)


def _session_files(paths: list[Path], bundle: Bundle) -> pl.DataFrame:
    from logsieve.data.load import load_session_csv, read_parquet
    from logsieve.parsing.spec import read_parquet_spec
    from logsieve.table import check_unique_ids, validate_sessions

    tables = []
    for path in paths:
        if path.name.lower().endswith(".parquet"):
            df = read_parquet(path)
            spec = read_parquet_spec(path)  # written by parse: its event ids must be the bundle's
            if spec is not None and spec.events_sha256() != bundle_spec(bundle).events_sha256():
                raise DataError(path, f"parsed with other templates ({spec.describe()}) than the bundle's, so its "
                                "event ids mean other things; score the raw logs instead")  # fmt: skip
            if "label" not in df.columns:  # labels are optional when scoring
                df = df.with_columns(label=pl.lit(None, pl.Int8))
            tables.append(validate_sessions(df, path))
        else:
            tables.append(load_session_csv(path))
    if len(tables) == 1:
        return tables[0]
    sessions = pl.concat(tables, how="diagonal_relaxed")
    check_unique_ids(sessions["session_id"], ", ".join(map(str, paths)))  # ids must be unique across the files
    return sessions


def bundle_spec(bundle: Bundle) -> ParseSpec:
    """How raw lines become this bundle's sessions: its parse spec, or for a bundle without one (all bundles before
    format version 2) HDFS lines in blk_ sessions with its template source."""
    from logsieve.parsing.spec import hdfs_spec

    if bundle.parse is not None:
        return bundle.parse
    if bundle.templates == "hdfs":
        return hdfs_spec()
    if bundle.templates != "miner" or bundle.miner_state is None:
        raise LogsieveError(f"bundle {bundle.name!r}: unknown template source {bundle.templates!r}")
    return hdfs_spec().model_copy(update={"templates": "miner", "miner": bundle.miner_state})


def bundle_templates(bundle: Bundle) -> str | TemplateMiner:
    """What ``parse_logs_report`` needs for this bundle: ``"hdfs"`` or its saved miner (read-only)."""
    if bundle.templates == "hdfs":
        return "hdfs"
    if bundle.templates != "miner" or bundle.miner_state is None:
        raise LogsieveError(f"bundle {bundle.name!r}: unknown template source {bundle.templates!r}")
    from logsieve.parsing.mining import TemplateMiner

    return TemplateMiner.from_state(bundle.miner_state, f"bundle {bundle.name!r}: miner state")


def labelled_metrics(sessions: pl.DataFrame, table: pl.DataFrame, threshold: float) -> dict[str, Any] | None:
    """classification_metrics over the labelled sessions, or None when none carries a label."""
    if "label" not in sessions.columns:
        return None
    known = sessions["label"].is_not_null()
    if not known.any():
        return None
    from logsieve.evaluation.metrics import classification_metrics

    out = classification_metrics(sessions["label"].filter(known).to_numpy(), table["score"].filter(known).to_numpy(),
                                 threshold)  # fmt: skip
    out["unlabelled"] = int((~known).sum())
    return out


# --- the whole `score` run ----------------------------------------------------------------------------------


@dataclass
class ScoreResult:
    table: pl.DataFrame  # score_table rows, plus ``label`` when the input carries labels
    alert: pl.Series  # Boolean per row: ALERT
    explanations: dict[str, dict[str, Any]] | None  # session_id -> explanation, alerts only (with explain)
    metrics: dict[str, Any] | None  # classification_metrics over labelled rows, at the bundle's threshold
    stats: RejectStats | None  # raw logs: lines read and rejected


def score_inputs(
    bundle: Bundle,
    inputs: Sequence[str | Path],
    labels: str | Path | None = None,
    explain: bool = False,
    show_lines: int | None = None,
) -> ScoreResult:
    """Load, score, and (``explain``) explain every alert; see ``load_inputs`` and ``explain_sessions``."""
    data = load_inputs(bundle, inputs, labels)
    table = score_table(bundle, data.sessions)
    metrics = labelled_metrics(data.sessions, table, bundle.threshold)
    if metrics is not None:
        table = table.with_columns(label=data.sessions["label"])
    alert = table.select(ALERT).to_series().rename("alert")
    explanations = None
    if explain:
        from logsieve.serving.explain import explain_sessions

        flagged = data.sessions.filter(alert)
        found = explain_sessions(bundle, flagged, table["score"].filter(alert).to_numpy(), files=data.files,
                                 show_lines=show_lines)  # fmt: skip
        explanations = {e["session_id"]: e for e in found}
    return ScoreResult(table, alert, explanations, metrics, data.stats)
