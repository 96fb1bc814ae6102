"""Raw lines of any ``LogFormat`` -> a table of header fields + content (+ timestamp, + label), rejects counted.

The format's header pattern becomes one anchored regex; polars extracts its named groups for a whole chunk at
once, so no Python runs per line. A line is rejected (counted by reason, kept for a reject file if asked) when it
is empty, too long, binary, not UTF-8, does not fit the pattern (``malformed``), has a time that does not read
(``bad_timestamp``) or lacks its label field. The HDFS fast path of ``lines.py`` stays as it is; this reader is
the general one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from logsieve.parsing.formats import CONTENT, EPOCH, LogFormat, resolve_format
from logsieve.parsing.lines import (
    _NOT_CONTROL,
    BAD_GZIP,
    BAD_TIME,
    BINARY,
    EMPTY,
    MALFORMED,
    MAX_LINE_BYTES,
    NON_UTF8,
    REJECT_TEXT_CHARS,
    TOO_LONG,
    RejectStats,
    decode_lines,
    iter_chunks,
)

NO_LABEL = "no_label"


def read_chunk(
    data: bytes, fmt: LogFormat, source: str = "", error: str | None = None
) -> tuple[pl.DataFrame, RejectStats]:
    """Whole lines of one chunk -> (good lines: ``n`` (0-based), ``line``, one column per field, ``timestamp`` and
    ``label`` when the format has them; this chunk's reject stats)."""
    stats = RejectStats(keep=True)
    data, df, bad = decode_lines(data)
    df = df.with_columns(pl.col("line").str.strip_suffix("\r"))  # CRLF files (most of Loghub)
    line = pl.col("line")
    names = fmt.field_names
    groups = line.str.extract_groups(fmt.regex)
    df = df.with_columns(groups.struct.field(name).alias(name) for name in names)
    df = df.with_columns(pl.col(CONTENT).str.strip_chars_end())  # trailing blanks are no part of a message
    extra = []
    if fmt.time is not None:
        extra.append(_timestamp(fmt).alias("timestamp"))
    if fmt.label is not None:
        extra.append((pl.col(fmt.label.field) != fmt.label.normal).alias("label"))
    if extra:
        df = df.with_columns(extra)
    checks = {  # in order of precedence
        NON_UTF8: pl.col("n").is_in(list(bad)) if bad else None,
        EMPTY: line == "",
        TOO_LONG: line.str.len_bytes() > MAX_LINE_BYTES,
        BINARY: line.str.contains(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]") if data.translate(None, _NOT_CONTROL) else None,
        MALFORMED: pl.col(CONTENT).is_null(),
        BAD_TIME: pl.col("timestamp").is_null() if fmt.time is not None else None,
        NO_LABEL: (pl.col(fmt.label.field).fill_null("") == "") if fmt.label is not None else None,
    }
    active: dict[str, pl.Expr] = {k: v for k, v in checks.items() if v is not None}
    df = df.with_columns(bad=pl.any_horizontal(*active.values()))
    stats.lines = df.height
    rejected = df.filter("bad")
    if rejected.height:
        reason = pl.coalesce(pl.when(expr).then(pl.lit(name)) for name, expr in active.items())
        for n, r, text in rejected.select("n", reason, line.str.slice(0, REJECT_TEXT_CHARS)).iter_rows():
            stats.add(source, n + 1, r, bad.get(n, text))
    if error:
        stats.add(source, df.height + 1, BAD_GZIP, error)
    return df.filter(~pl.col("bad")).drop("bad"), stats


def _timestamp(fmt: LogFormat) -> pl.Expr:
    """The format's time fields -> Datetime(us); null where they do not read."""
    spec = fmt.time
    assert spec is not None
    text = pl.concat_str([pl.col(f) for f in spec.fields], separator=" ")
    if spec.format == EPOCH:
        seconds = text.cast(pl.Float64, strict=False)
        return pl.from_epoch((seconds * 1_000_000).cast(pl.Int64, strict=False), time_unit="us")
    fmt_str = spec.format
    if spec.year is not None:
        text, fmt_str = pl.lit(f"{spec.year} ") + text, f"%Y {fmt_str}"
    with warnings.catch_warnings():  # a bare %f (unpadded fractions, HealthApp) is deliberate: read to the second
        warnings.simplefilter("ignore")
        return text.str.strptime(pl.Datetime("us"), fmt_str, strict=False)


def read_format(
    paths: Iterable[str | Path], fmt: str | Path | LogFormat, keep_rejects: bool = False
) -> tuple[pl.DataFrame, RejectStats]:
    """Every good line of ``paths`` (files, .gz, directories, ``-``) as a table: ``line_number`` (1-based across
    all inputs in order), ``source``, ``file_line`` (1-based within its file), the format's fields, ``timestamp``
    and ``label`` when it has them, and the raw ``line``."""
    table, stats, _ = read_format_files(paths, fmt, keep_rejects)
    return table, stats


def read_format_files(
    paths: Iterable[str | Path], fmt: str | Path | LogFormat, keep_rejects: bool = False
) -> tuple[pl.DataFrame, RejectStats, pl.DataFrame]:
    """``read_format`` plus a table of the inputs: ``source``, ``offset`` (global lines before it), ``lines`` and
    ``malformed`` (its lines that do not fit the format), so a caller can tell a wrong format per file and turn
    global line numbers back into (file, line) as ``pipeline.locate_sessions`` does."""
    from logsieve.parsing.lines import expand_paths

    fmt = resolve_format(fmt)
    stats, offset = RejectStats(keep=keep_rejects), 0
    frames: list[pl.DataFrame] = []
    files: list[tuple[str, int, int, int]] = []
    for src in expand_paths(paths):  # one input at a time: the same path given twice is two inputs
        start, malformed = offset, 0
        for chunk in iter_chunks([src]):
            df, chunk_stats = read_chunk(chunk.read(), fmt, chunk.source, chunk.error)
            frames.append(
                df.with_columns(
                    line_number=pl.col("n").cast(pl.Int64) + offset + 1,
                    source=pl.lit(chunk.source, pl.String),
                    file_line=pl.col("n").cast(pl.Int64) + (offset - start) + 1,
                )
            )
            stats.merge(chunk_stats, chunk.source, offset - start)
            malformed += chunk_stats.counts[MALFORMED]
            offset += chunk_stats.lines
        files.append((src, start, offset - start, malformed))
    if not frames:
        frames.append(
            read_chunk(b"", fmt)[0].with_columns(
                line_number=pl.lit(0, pl.Int64), source=pl.lit("", pl.String), file_line=pl.lit(0, pl.Int64)
            )
        )
    out = pl.concat(frames)
    extra = [c for c in ("timestamp", "label") if c in out.columns]
    table = out.select("line_number", "source", "file_line", *fmt.field_names, *extra, "line")
    schema = {"source": pl.String, "offset": pl.Int64, "lines": pl.Int64, "malformed": pl.Int64}
    return table, stats, pl.DataFrame(files, schema=schema, orient="row")


def mine_templates(table: pl.DataFrame, fmt: str | Path | LogFormat, **miner_params):  # noqa: ANN201
    """Fit a ``TemplateMiner`` with the format's masks and Drain parameters on ``table[Content]``; returns
    (template id per line, the fitted miner). ``miner_params`` override the format's."""
    from logsieve.parsing.mining import TemplateMiner

    fmt = resolve_format(fmt)
    miner = TemplateMiner(**{**fmt.miner_kwargs(), **miner_params})
    return miner.fit_transform(table[CONTENT]), miner
