"""Sessions by time windows (fixed, sliding) and by a fixed number of lines, labelled from per-line labels."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from conftest import loghub_sample

from logsieve.errors import LogsieveError
from logsieve.parsing.reader import mine_templates, read_format
from logsieve.parsing.windows import line_windows, parse_duration, time_windows

T0 = datetime(2024, 1, 1, 0, 0, 0)


def _lines(seconds: list[float], labels: list[bool] | None = None) -> pl.DataFrame:
    df = pl.DataFrame(
        {
            "line_number": list(range(1, len(seconds) + 1)),
            "timestamp": [T0 + timedelta(seconds=s) for s in seconds],
            "event": [f"E{i}" for i in range(1, len(seconds) + 1)],
        }
    )
    return df if labels is None else df.with_columns(label=pl.Series(labels))


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60), ("5m", 300), ("1.5h", 5400), ("500ms", 0.5), ("2d", 172800), ("30", 30)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize(("text", "problem"), [("0s", "longer than zero"), ("-5m", "longer than zero"),
                                                ("soon", "not a duration"), ("5 weeks", "not a duration")])  # fmt: skip
def test_bad_duration_is_one_clear_error(text: str, problem: str) -> None:
    with pytest.raises(LogsieveError, match=problem):
        parse_duration(text)


def test_fixed_time_windows_keep_lines_times_and_labels() -> None:
    lines = _lines([0, 10, 59.9, 60, 125, 130], labels=[False, False, True, False, False, False])
    w = time_windows(lines, "60s")
    assert w["session_id"].to_list() == ["2024-01-01T00:00:00", "2024-01-01T00:01:00", "2024-01-01T00:02:00"]
    assert w["events"].to_list() == [["E1", "E2", "E3"], ["E4"], ["E5", "E6"]]
    assert w["line_numbers"].to_list() == [[1, 2, 3], [4], [5, 6]]
    assert w["label"].to_list() == [1, 0, 0]  # anomalous when any line is
    assert w["start_time"][2] == T0 + timedelta(seconds=125) and w["end_time"][2] == T0 + timedelta(seconds=130)


def test_sliding_time_windows_overlap() -> None:
    lines = _lines([0, 40, 70], labels=[False, True, False])
    w = time_windows(lines, "60s", step="30s")
    # windows start at -30, 0, 30, 60 s: [-30, 30) holds line 1, [0, 60) lines 1-2, [30, 90) lines 2-3, [60, 120) 3
    assert w["line_numbers"].to_list() == [[1], [1, 2], [2, 3], [3]]
    assert w["label"].to_list() == [0, 1, 1, 0]


def test_windows_without_labels_are_unlabelled_and_out_of_order_lines_sort() -> None:
    lines = _lines([61, 5, 1])
    w = time_windows(lines, 60)
    assert w["label"].null_count() == w.height
    assert w["line_numbers"].to_list() == [[3, 2], [1]]  # time order inside a window


def test_bad_windows() -> None:
    lines = _lines([0, 1])
    with pytest.raises(LogsieveError, match="longer than zero"):
        time_windows(lines, "0s")
    with pytest.raises(LogsieveError, match="must not be longer"):
        time_windows(lines, "10s", step="20s")
    with pytest.raises(LogsieveError, match="timestamp"):
        time_windows(lines.drop("timestamp"), "10s")
    with pytest.raises(LogsieveError, match="at least 1"):
        line_windows(lines, 0)


def test_line_windows_fixed_and_sliding() -> None:
    lines = _lines(list(range(5)), labels=[False, False, False, False, True])
    fixed = line_windows(lines, 2)
    assert fixed["line_numbers"].to_list() == [[1, 2], [3, 4], [5]]
    assert fixed["session_id"].to_list() == ["L1", "L3", "L5"]
    assert fixed["label"].to_list() == [0, 0, 1]
    sliding = line_windows(lines, 3, step=2)
    assert sliding["line_numbers"].to_list() == [[1, 2, 3], [3, 4, 5], [5]]


def test_bgl_sample_windows_end_to_end() -> None:
    """The real BGL 2k sample (skipped without it): read with its format, mine, window; labels from the lines."""
    table, stats = read_format([loghub_sample("BGL")], "BGL")
    ids, _ = mine_templates(table, "BGL")
    w = time_windows(table.with_columns(event=ids), "60s")
    assert stats.rejected == 0
    assert w["events"].list.len().sum() == 2000  # fixed windows: every line in exactly one
    anomalous_lines = set(table.filter("label")["line_number"].to_list())
    expected = [int(bool(anomalous_lines & set(n))) for n in w["line_numbers"].to_list()]
    assert w["label"].to_list() == expected and 0 < sum(expected) < w.height
