"""Read the raw lines of flagged sessions back from their log files, by line number.

The parser keeps no text (an 11 M-line log would not fit), only global line numbers and the ``files`` table
(``ParseResult.files``). Reading back goes through the parser's own chunker, so a line number means the same
line here as there (gzip, runaway lines, a missing final newline), and it is one pass per file for all
wanted lines, stopping after the last one. Stdin cannot be read twice: its lines come back without text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import polars as pl

from logsieve.errors import LogsieveError
from logsieve.parsing.lines import STDIN, iter_chunks

SHOWN_CHARS = 400  # a line is cut to this many characters for display (a 1 MB line stays readable)


class SourceLine(NamedTuple):
    source: str
    line: int  # 1-based within ``source``
    text: str | None  # None: not readable any more (stdin, file gone or shorter than when parsed)


def read_back(files: pl.DataFrame, numbers: Iterable[int], max_chars: int = SHOWN_CHARS) -> dict[int, SourceLine]:
    """Global line number -> its file, line within the file and text, for every number in ``numbers``."""
    wanted = np.unique(np.fromiter(numbers, dtype=np.int64))
    out: dict[int, SourceLine] = {}
    for source, offset, lines in files.select("source", "offset", "lines").iter_rows():
        lo, hi = np.searchsorted(wanted, [offset + 1, offset + lines + 1])
        if lo == hi:
            continue
        local = wanted[lo:hi] - offset
        texts = {} if source == STDIN else _file_lines(source, local, max_chars)
        out.update({int(n) + offset: SourceLine(source, int(n), texts.get(int(n))) for n in local})
    return out


def _file_lines(source: str, local: np.ndarray, max_chars: int) -> dict[int, str]:
    """Lines ``local`` (sorted, 1-based) of one file, in one pass that stops after the last one."""
    out: dict[int, str] = {}
    base = 0  # lines before the current chunk
    try:
        for chunk in iter_chunks([source]):
            data = chunk.read()
            n = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
            a, b = np.searchsorted(local, [base + 1, base + n + 1])
            if a < b:
                lines = data.split(b"\n")
                for k in local[a:b].tolist():
                    out[k] = _shown(lines[k - base - 1], max_chars)
            base += n
            if base >= local[-1]:
                break
    except LogsieveError:  # the file went away or became unreadable since parsing: lines come back without text
        pass
    return out


def _shown(raw: bytes, max_chars: int) -> str:
    text = raw.rstrip(b"\r")[: max_chars * 4].decode("utf-8", errors="replace")
    if len(text) > max_chars or len(raw) > max_chars * 4:
        return f"{text[:max_chars]}… ({len(raw):,} bytes)"
    return text
