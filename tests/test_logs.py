"""Raw line reader: fields, inputs (plain, .gz, directory, stdin) and every kind of malformed line."""

from __future__ import annotations

import gzip
import io
import sys

import polars as pl
import pytest

from logsieve.errors import DataError
from logsieve.parsing.lines import (
    BAD_GZIP,
    BAD_TIME,
    BINARY,
    EMPTY,
    MALFORMED,
    MAX_LINE_BYTES,
    NON_UTF8,
    TOO_LONG,
    iter_chunks,
    read_logs,
    split_lines,
)  # fmt: skip

GOOD = (
    "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating"
)
GOOD2 = "081109 203807 222 WARN dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /user/root/part-00001. blk_-69"


def test_fields_of_a_good_line(tmp_path):
    log = tmp_path / "a.log"
    log.write_text(GOOD + "\n" + GOOD2 + "\n")
    df, stats = read_logs([log])
    row = df.row(0, named=True)
    assert (row["date"], row["time"], row["pid"], row["level"]) == ("081109", "203615", 148, "INFO")
    assert row["component"] == "dfs.DataNode$PacketResponder"
    assert row["content"].startswith("PacketResponder 1 for block blk_38865049064139660")
    assert str(row["timestamp"]) == "2008-11-09 20:36:15"
    assert df["line_number"].to_list() == [1, 2] and df["level"][1] == "WARN"
    assert stats.lines == 2 and stats.rejected == 0


def test_each_malformed_kind_is_counted_with_its_line(tmp_path):
    log = tmp_path / "bad.log"
    lines = [
        GOOD.encode(),                                  # 1 good
        b"",                                            # 2 empty
        GOOD.encode()[:20],                             # 3 truncated
        b"081109 203615 148 INFO dfs.X: a\x00\x01b",    # 4 binary
        b"081109 203615 148 INFO dfs.X: caf\xe9 \xff",  # 5 not UTF-8
        b"081109 203615 " + b"x" * (1 << 20),           # 6 a 1 MB line
        b"081309 203615 148 INFO dfs.X: month 13",      # 7 impossible date
        b"hello world",                                 # 8 not an HDFS line
        GOOD2.encode(),                                 # 9 good, no trailing newline
    ]  # fmt: skip
    log.write_bytes(b"\n".join(lines))
    df, stats = read_logs([log], keep_rejects=True)
    assert df["line_number"].to_list() == [1, 9]
    assert stats.lines == 9
    got = {line: reason for _, line, reason, _ in stats.rows}
    assert got == {2: EMPTY, 3: MALFORMED, 4: BINARY, 5: NON_UTF8, 6: TOO_LONG, 7: BAD_TIME, 8: MALFORMED}
    assert stats.counts[MALFORMED] == 2 and stats.rejected == 7
    assert all(len(text) <= 300 for *_, text in stats.rows)
    out = stats.write(tmp_path / "rejects.csv")
    table = pl.read_csv(out)
    assert table.columns == ["source", "line", "reason", "text"] and table.height == 7
    assert "caf\ufffd" in table.filter(pl.col("line") == 5)["text"][0]


def test_empty_file_and_crlf(tmp_path):
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    df, stats = read_logs([empty])
    assert df.height == 0 and stats.lines == 0 and stats.rejected == 0
    crlf = tmp_path / "crlf.log"
    crlf.write_bytes((GOOD + "\r\n" + GOOD2 + "\r\n").encode())
    df, stats = read_logs([crlf])
    assert df.height == 2 and df["content"][0].endswith("terminating")


def test_gz_directory_and_line_numbers_across_files(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.log").write_text(GOOD + "\n" + GOOD + "\n")
    (folder / "b.log.gz").write_bytes(gzip.compress((GOOD2 + "\nbroken\n").encode()))
    (folder / ".hidden").write_text("not a log\n")
    df, stats = read_logs([folder], keep_rejects=True)
    assert df["line_number"].to_list() == [1, 2, 3]
    assert df["source"].to_list()[-1].endswith("b.log.gz") and df["level"][2] == "WARN"
    assert stats.lines == 4 and stats.rows[0][1:3] == (2, MALFORMED)  # line 2 *of b.log.gz*


def test_truncated_gz_keeps_what_was_read(tmp_path):
    gz = tmp_path / "cut.log.gz"
    body = "\n".join([GOOD] * 2000).encode()
    gz.write_bytes(gzip.compress(body)[:-40])
    df, stats = read_logs([gz])
    assert stats.counts[BAD_GZIP] == 1 and 0 < df.height <= 2000


def test_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((GOOD + "\n" + GOOD2 + "\n").encode())))
    df, stats = read_logs(["-"])
    assert df.height == 2 and df["source"][0] == "-"


@pytest.mark.parametrize("gz", [False, True])
def test_small_chunks_cut_at_line_ends(tmp_path, gz):
    lines = [GOOD.replace("148", str(i)) for i in range(500)]
    body = ("\n".join(lines) + "\n").encode()
    path = tmp_path / ("x.log.gz" if gz else "x.log")
    path.write_bytes(gzip.compress(body) if gz else body)
    chunks = list(iter_chunks([path], chunk_bytes=1000))
    assert len(chunks) > 50 and all(c.read().endswith(b"\n") for c in chunks)
    texts = [line for c in chunks for line in split_lines(c.read())[0]["line"].to_list()]
    assert texts == lines


def test_runaway_line_in_a_stream_is_one_rejected_line(tmp_path):
    path = tmp_path / "x.log.gz"
    path.write_bytes(gzip.compress(GOOD.encode() + b"\n" + b"z" * (3 * MAX_LINE_BYTES) + b"\n" + GOOD.encode() + b"\n"))
    chunks = list(iter_chunks([path], chunk_bytes=4096))
    df, stats = read_logs([path], keep_rejects=True)
    assert sum(c.read().count(b"\n") for c in chunks) == 3
    assert df["line_number"].to_list() == [1, 3] and stats.counts[TOO_LONG] == 1


def test_missing_inputs_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_logs([tmp_path / "nope.log"])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataError, match="no log files"):
        read_logs([tmp_path / "empty_dir"])
