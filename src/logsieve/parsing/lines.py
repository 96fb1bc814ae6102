"""Raw HDFS log lines -> a table of lines, with every malformed line counted (and optionally kept) as a reject.

A line looks like ``081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_…``
(date yymmdd, time HHMMSS, pid, level, component, content). Inputs are read in chunks of whole lines so that
an 11 M-line log never sits in memory as text, and chunks of plain files are mere byte ranges that a worker
reads itself. Bad lines (empty, too long, not UTF-8, binary, no HDFS header, impossible time) are
never fatal and never silently dropped: each one is counted by reason in ``RejectStats``.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from logsieve.artifacts import atomic_file
from logsieve.errors import DataError
from logsieve.parsing.templates import mask_digits

STDIN = "-"
CHUNK_BYTES = 8 << 20  # ~58 k HDFS lines: small enough to stay in cache, big enough to amortise
READ_BYTES = 64 << 10  # stream read size (a read error loses at most this)
MAX_LINE_BYTES = 64 << 10  # HDFS lines are < 1 KiB; anything this long is not a log line
REJECT_TEXT_CHARS = 300  # how much of a rejected line the reject file keeps
MAX_KEPT_REJECTS = 1_000_000  # rows a reject file keeps (all are counted); bounds memory on a garbage input

HEADER_RE = r"^\d{6} \d{6} \d+ [A-Z]+ [^\s:]+: "  # cheap validity check (no captures)
FIELDS_RE = r"^(\d{6}) (\d{6}) (\d+) ([A-Z]+) ([^\s:]+): (.*)$"
FIELDS = ("date", "time", "pid", "level", "component", "content")

# reject reasons
EMPTY, TOO_LONG, NON_UTF8, BINARY = "empty", "too_long", "non_utf8", "binary"
MALFORMED, BAD_TIME, BAD_GZIP = "malformed", "bad_timestamp", "corrupt_gzip"

_CONTROL = bytes([*range(0, 9), 11, 12, *range(14, 32), 127])  # not \t, \n, \r (\r\n is a line end)
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL)


@dataclass
class RejectStats:
    """Lines read, rejected lines by reason, and (if ``keep``) the rejected lines themselves for a reject file."""

    lines: int = 0
    counts: Counter = field(default_factory=Counter)
    unblocked: int = 0  # well-formed lines that name no block, so belong to no session
    keep: bool = False
    rows: list[tuple[str, int, str, str]] = field(default_factory=list)  # (source, line, reason, text)

    @property
    def rejected(self) -> int:
        return sum(self.counts.values())

    def add(self, source: str, line: int, reason: str, text: str) -> None:
        self.counts[reason] += 1
        if self.keep and len(self.rows) < MAX_KEPT_REJECTS:
            self.rows.append((source, line, reason, text[:REJECT_TEXT_CHARS]))

    def merge(self, other: RejectStats, source: str, line_offset: int) -> None:
        """Fold in a chunk's stats, whose line numbers count from 1 within the chunk; ``line_offset`` = lines of
        the same source before the chunk."""
        self.lines += other.lines
        self.unblocked += other.unblocked
        self.counts.update(other.counts)
        if self.keep:
            room = MAX_KEPT_REJECTS - len(self.rows)
            self.rows.extend((source, n + line_offset, r, t) for _, n, r, t in other.rows[:room])

    def summary(self) -> str:
        parts = ", ".join(f"{n:,} {reason}" for reason, n in self.counts.most_common())
        cut = f"; the reject file keeps the first {MAX_KEPT_REJECTS:,}" if self.rejected > MAX_KEPT_REJECTS else ""
        return f"{self.lines:,} lines, {self.rejected:,} rejected" + (f" ({parts}{cut})" if parts else "")

    def write(self, path: str | Path) -> Path:
        """Reject file: CSV source,line,reason,text (line is 1-based within its source); atomic."""
        path = Path(path)
        schema = {"source": pl.String, "line": pl.Int64, "reason": pl.String, "text": pl.String}
        with atomic_file(path) as tmp:
            pl.DataFrame(self.rows, schema=schema, orient="row").write_csv(tmp)
        return path


@dataclass
class Chunk:
    """Whole lines of one source: either ``data`` (decompressed text) or a byte range a worker reads itself."""

    source: str
    data: bytes | None = None
    offset: int = 0
    size: int = 0
    error: str | None = None  # a read problem after these lines (e.g. a truncated .gz)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        try:
            with open(self.source, "rb") as f:
                f.seek(self.offset)
                return f.read(self.size)
        except OSError as exc:
            raise DataError(self.source, f"cannot read ({exc.strerror or exc})") from None


def expand_paths(paths: Iterable[str | Path]) -> list[str]:
    """Files as given, directories as their (recursive, sorted, non-hidden) files, ``-`` as stdin."""
    out: list[str] = []
    for p in paths:
        if str(p) == STDIN:
            out.append(STDIN)
            continue
        p = Path(p)
        if p.is_dir():
            files = sorted(
                f for f in p.rglob("*") if f.is_file() and not any(s.startswith(".") for s in f.relative_to(p).parts)
            )
            if not files:
                raise DataError(p, "directory holds no log files")
            out += [str(f) for f in files]
        elif p.is_file():
            out.append(str(p))
        elif not p.exists():
            raise DataError(p, "file not found")
        else:
            raise DataError(p, "not a regular file or directory")
    if not out:
        raise DataError("(inputs)", "no log files given")
    return out


def iter_chunks(paths: Iterable[str | Path], chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Chunks of whole lines, in input order. Plain files become byte ranges; .gz and stdin are decompressed here."""
    for src in expand_paths(paths):
        if src == STDIN:
            yield from _stream_chunks(STDIN, sys.stdin.buffer, chunk_bytes)
            continue
        try:
            if is_gzip(src):
                with gzip.open(src, "rb") as f:
                    yield from _stream_chunks(src, f, chunk_bytes)
            else:
                yield from _range_chunks(src, chunk_bytes)
        except OSError as exc:  # unreadable file (permissions, I/O error)
            raise DataError(src, f"cannot read ({exc.strerror or exc})") from None


def is_gzip(src: str | Path) -> bool:
    """Does the file start with the gzip magic? (Raises OSError when it cannot be read.)"""
    with open(src, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _range_chunks(src: str, chunk_bytes: int) -> Iterator[Chunk]:
    """Cut a plain file at the first newline after every ``chunk_bytes``."""
    size = Path(src).stat().st_size
    start = 0
    with open(src, "rb") as f:
        while start < size:
            end = min(start + chunk_bytes, size)
            f.seek(end)
            while end < size:  # extend to the end of the line
                block = f.read(1 << 16)
                if not block:
                    break
                nl = block.find(b"\n")
                if nl >= 0:
                    end += nl + 1
                    break
                end += len(block)
            yield Chunk(src, offset=start, size=end - start)
            start = end


def _stream_chunks(src: str, f, chunk_bytes: int) -> Iterator[Chunk]:
    """Read a stream in small blocks and hand out chunks of whole lines. A read error (truncated .gz) ends the
    stream but keeps every line before it; a runaway line keeps only its head (MAX_LINE_BYTES + 1 bytes, so it
    is still one line, rejected as too long) so memory stays bounded."""
    buf, skipping, error = bytearray(), False, None
    while True:
        try:
            block = f.read(min(READ_BYTES, chunk_bytes))
        except (EOFError, OSError, zlib.error) as exc:
            block, error = b"", f"{type(exc).__name__}: {exc}".rstrip(": ")
        if skipping and block:  # drop the rest of a runaway line, up to its newline
            nl = block.find(b"\n")
            if nl < 0:
                continue
            block, skipping = block[nl:], False
        buf += block
        last = buf.rfind(b"\n")
        if len(buf) - last - 1 > MAX_LINE_BYTES:
            del buf[last + MAX_LINE_BYTES + 2 :]
            skipping = True
        if not block:  # end of stream
            if buf and not buf.endswith(b"\n"):
                buf += b"\n"
            if buf or error:
                yield Chunk(src, data=bytes(buf), error=error)
            return
        if len(buf) >= chunk_bytes and last >= 0:
            yield Chunk(src, data=bytes(buf[: last + 1]))
            del buf[: last + 1]


def _fix_non_utf8(data: bytes) -> tuple[bytes, dict[int, str]]:
    """Blank out lines that are not UTF-8 (polars needs valid text); return them, lossily decoded, by index."""
    lines = data.split(b"\n")
    bad: dict[int, str] = {}
    for i, line in enumerate(lines):
        if not line.isascii():
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad[i] = line.decode("utf-8", errors="replace")
                lines[i] = b""
    return (b"\n".join(lines) if bad else data), bad


def decode_lines(data: bytes) -> tuple[bytes, pl.DataFrame, dict[int, str]]:
    """Whole lines -> (the bytes as read, a table of ``n`` (0-based) and ``line``, {n: why} of lines that were
    not UTF-8, which are replaced so the rest of the chunk still reads)."""
    bad: dict[int, str] = {}
    if not data.isascii():
        data, bad = _fix_non_utf8(data)
    df = (
        pl.read_lines(data, name="line", row_index_name="n")
        if data
        else pl.DataFrame(schema={"n": pl.UInt32, "line": pl.String})
    )
    return data, df, bad


def split_lines(
    data: bytes, source: str = "", error: str | None = None, masked: bool = False
) -> tuple[pl.DataFrame, RejectStats]:
    """Whole lines -> (good lines with a 0-based ``n`` and ``timestamp``, stats of this chunk's rejects).

    Good means: UTF-8, printable, at most MAX_LINE_BYTES, an HDFS header and a real date and time.
    ``masked`` adds each line with its digits masked (the key of ``TemplateMatcher.codes``), read from the
    masked bytes at once, which is far cheaper than a regex replace per line.
    """
    stats = RejectStats(keep=True)
    data, df, bad = decode_lines(data)
    if masked:
        df = df.with_columns(masked=pl.read_lines(mask_digits(data), name="masked")["masked"] if data else pl.lit(""))
    line = pl.col("line")
    ts = line.str.slice(0, 13).str.strptime(pl.Datetime("us"), "%y%m%d %H%M%S", strict=False)
    maybe_checks = {  # in order of precedence; cheap boolean passes, reasons are named for the few failures only
        NON_UTF8: pl.col("n").is_in(list(bad)) if bad else None,
        EMPTY: line == "",
        TOO_LONG: line.str.len_bytes() > MAX_LINE_BYTES,
        BINARY: line.str.contains(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]") if data.translate(None, _NOT_CONTROL) else None,
        MALFORMED: ~line.str.contains(HEADER_RE),
        BAD_TIME: pl.col("timestamp").is_null(),
    }
    checks = {k: v for k, v in maybe_checks.items() if v is not None}
    df = df.with_columns(timestamp=ts).with_columns(bad=pl.any_horizontal(*checks.values()))
    stats.lines = df.height
    rejected = df.filter("bad")
    if rejected.height:
        reason = pl.coalesce(pl.when(expr).then(pl.lit(name)) for name, expr in checks.items())
        rows = rejected.select("n", reason, line.str.slice(0, REJECT_TEXT_CHARS))
        for n, r, text in rows.iter_rows():
            stats.add(source, n + 1, r, bad.get(n, text))
    if error:
        stats.add(source, df.height + 1, BAD_GZIP, error)
    return df.filter(~pl.col("bad")).drop("bad"), stats


def parse_fields(lines: pl.DataFrame) -> pl.DataFrame:
    """Add date, time, pid, level, component and content to a table of good lines (regex captures: slower)."""
    groups = pl.col("line").str.extract_groups(FIELDS_RE)
    return lines.with_columns(
        *(groups.struct.field(str(i + 1)).alias(name) for i, name in enumerate(FIELDS))
    ).with_columns(pl.col("pid").cast(pl.Int64))


def read_logs(paths: Iterable[str | Path], keep_rejects: bool = False) -> tuple[pl.DataFrame, RejectStats]:
    """Every good line of ``paths`` with its fields; ``line_number`` is 1-based across all inputs in order."""
    stats, offset = RejectStats(keep=keep_rejects), 0
    empty = split_lines(b"")[0].with_columns(line_number=pl.lit(0, pl.Int64), source=pl.lit(""))
    frames, file_offsets = [empty], Counter[str]()
    for chunk in iter_chunks(paths):
        df, chunk_stats = split_lines(chunk.read(), chunk.source, chunk.error)
        frames.append(df.with_columns(line_number=pl.col("n").cast(pl.Int64) + offset + 1, source=pl.lit(chunk.source)))
        stats.merge(chunk_stats, chunk.source, file_offsets[chunk.source])
        offset += chunk_stats.lines
        file_offsets[chunk.source] += chunk_stats.lines
    out = parse_fields(pl.concat(frames))
    return out.select("line_number", "source", "timestamp", *FIELDS, "line"), stats
