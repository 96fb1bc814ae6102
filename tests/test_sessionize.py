"""Sessionizer: every block of a line, time-then-line order, times, line numbers and the label join."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from logsieve.parsing.sessionize import (
    group_lines,
    merge_groups,
    sessionize,
    with_block_ids,
)


def _lines(rows: list[tuple[int, str, str, str]]) -> pl.DataFrame:
    """(line_number, "HHMMSS", event, text) -> the table sessionize expects."""
    df = pl.DataFrame(rows, schema=["line_number", "hms", "event", "line"], orient="row")
    ts = pl.concat_str(pl.lit("081109 "), "hms").str.strptime(pl.Datetime("us"), "%y%m%d %H%M%S")
    return with_block_ids(df.with_columns(timestamp=ts))


def test_block_ids_every_block_once_in_order():
    df = with_block_ids(pl.DataFrame({"line": [
        "BLOCK* ask 10.0.0.1:50010 to delete  blk_7 blk_-3 blk_7",
        "Deleting block blk_5 file /mnt/hadoop/dfs/data/current/blk_5",
        "Verification succeeded for blk_-9.",
        "no block here",
    ]}))  # fmt: skip
    assert df["blocks"].to_list() == [["blk_7", "blk_-3"], ["blk_5"], ["blk_-9"], []]


def test_a_line_naming_two_blocks_belongs_to_both():
    s = sessionize(_lines([
        (1, "100000", "E5", "Receiving block blk_1"),
        (2, "100001", "E5", "Receiving block blk_2"),
        (3, "100002", "E30", "ask to delete blk_1 blk_2"),
    ]))  # fmt: skip
    got = {r["session_id"]: (r["events"], r["line_numbers"]) for r in s.iter_rows(named=True)}
    assert got == {"blk_1": (["E5", "E30"], [1, 3]), "blk_2": (["E5", "E30"], [2, 3])}


def test_order_is_time_then_line_and_times_are_kept():
    s = sessionize(_lines([
        (1, "100005", "E2", "late blk_1"),
        (2, "100001", "E1", "early blk_1"),
        (3, "100001", "E3", "same second, later line blk_1"),
        (4, "100000", "E9", "other blk_2"),
    ]))  # fmt: skip
    assert s["session_id"].to_list() == ["blk_2", "blk_1"]  # sessions in order of their first line in time
    one = s.row(1, named=True)
    assert one["events"] == ["E1", "E3", "E2"] and one["line_numbers"] == [2, 3, 1]
    assert one["start_time"] == datetime(2008, 11, 9, 10, 0, 1) and one["end_time"] == datetime(2008, 11, 9, 10, 0, 5)
    assert s.schema["label"] == pl.Int8 and s["label"].null_count() == 2


def test_labels_join_and_unknown_blocks_stay_null(tmp_path):
    labels = tmp_path / "anomaly_label.csv"
    labels.write_text("BlockId,Label\nblk_1,Anomaly\nblk_2,Normal\nblk_99,Normal\n")
    s = sessionize(
        _lines([(1, "100000", "E5", "blk_1"), (2, "100000", "E5", "blk_2"), (3, "100000", "E5", "blk_3")]), labels
    )
    assert dict(zip(s["session_id"], s["label"], strict=True)) == {"blk_1": 1, "blk_2": 0, "blk_3": None}


def test_pieces_out_of_time_order_are_merged_by_time():
    """Two files whose times overlap (two nodes' logs): partial sessions are re-sorted, not concatenated."""
    first = group_lines(_lines([(1, "100005", "E2", "blk_1"), (2, "100009", "E4", "blk_1")]))
    second = group_lines(_lines([(3, "100001", "E1", "blk_1"), (4, "100007", "E3", "blk_1")]))
    merged = merge_groups([first, second]).row(0, named=True)
    assert merged["events"] == ["E1", "E2", "E3", "E4"] and merged["line_numbers"] == [3, 1, 4, 2]
    early = group_lines(_lines([(1, "100001", "E1", "blk_1"), (2, "100002", "E2", "blk_2")]))
    late = group_lines(_lines([(3, "100002", "E3", "blk_1"), (4, "100003", "E4", "blk_2")]))
    joined = merge_groups([early, late])
    assert joined["events"].to_list() == [["E1", "E3"], ["E2", "E4"]]
    assert joined["line_numbers"].to_list() == [[1, 3], [2, 4]]
