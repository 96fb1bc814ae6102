"""Session loaders: good formats and every kind of bad input gives one clear DataError."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from logsieve.data.load import load_data, load_loghub, load_session_csv
from logsieve.errors import DataError
from logsieve.table import load_label_table, require_labels, write_sessions


def write(path: Path, text: str, gz: bool = False) -> Path:
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_session_csv_space_separated(tmp_path):
    df = load_session_csv(write(tmp_path / "s.csv", "session,label,events\n0,0,E5 E22 E5\n1,1,E5 E7\n"))
    assert df.columns == ["session_id", "label", "events"]
    assert df["events"].to_list() == [["E5", "E22", "E5"], ["E5", "E7"]]
    assert df["label"].to_list() == [0, 1]
    assert df.schema["label"] == pl.Int8


def test_loghub_event_traces_gz_and_label_override(tmp_path):
    traces = write(
        tmp_path / "Event_traces.csv.gz",
        "BlockId,Label,Type,Features,TimeInterval,Latency\n"
        'blk_1,Success,,"[E5,E22,E5]","[0.0, 1.0]",3\n'
        'blk_2,Fail,21,"[E5,E7]","[0.0]",1\n',
        gz=True,
    )
    df = load_loghub(traces)
    assert df["label"].to_list() == [0, 1]
    assert df["events"].to_list() == [["E5", "E22", "E5"], ["E5", "E7"]]
    labels = write(tmp_path / "anomaly_label.csv", "BlockId,Label\nblk_1,Anomaly\nblk_2,Normal\n")
    assert load_loghub(traces, labels)["label"].to_list() == [1, 0]
    assert load_label_table(labels).height == 2


def test_load_data_dispatches_parquet(tmp_path):
    df = load_session_csv(write(tmp_path / "s.csv", "session,label,events\n0,0,E5 E22\n1,1,E5 E7\n"))
    path = write_sessions(df, tmp_path / "s.parquet")
    assert load_data(path).equals(df)


@pytest.mark.parametrize(
    ("text", "needle", "row"),
    [
        ("", "empty", None),
        ("   \n", "empty", None),
        ("session,label\n0,0\n", "no events column", None),
        ("label,events\n0,E5\n", "no session id column", None),
        ("session,label,events\n0,0,E5 E22\n1,0,E5 @@\n", "unparsable event list", 3),
        ("session,label,events\n0,0,E5\n1,0,\n", "event list", 3),
        ("session,label,events\n0,maybe,E5\n", "unknown label value 'maybe'", 2),
        ("session,label,events\n0,2,E5\n", "unknown label value '2'", 2),
    ],
)
def test_bad_session_files(tmp_path, text, needle, row):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as err:
        load_session_csv(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)
    assert err.value.row == row


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_session_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="file not found"):
        load_data(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="directory"):
        load_session_csv(tmp_path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "s.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataError, match="cannot read"):
        load_session_csv(path)


def test_one_class_and_unlabelled_rejected_for_training(tmp_path):
    only_normal = load_session_csv(write(tmp_path / "a.csv", "session,label,events\n0,0,E5\n1,0,E22\n"))
    with pytest.raises(DataError, match="only one class"):
        require_labels(only_normal, "a.csv")
    unlabelled = load_session_csv(write(tmp_path / "b.csv", "session,label,events\n0,,E5\n1,1,E22\n"))
    assert unlabelled["label"].null_count() == 1
    with pytest.raises(DataError, match="no label"):
        require_labels(unlabelled, "b.csv")


def test_shared_sample_loads(shared_hdfs):
    df = load_session_csv(shared_hdfs / "sessions_sample.csv.gz")
    assert df.height == 92_009
    assert int(df["label"].sum()) == 2_691


def test_repeated_session_id_in_csv_is_refused_naming_the_id_and_its_file_lines(tmp_path):
    path = write(tmp_path / "dup.csv", "session,label,events\nb1,0,E5\nb2,0,E5 E22\nb1,1,E7\nb3,0,E5\n")
    with pytest.raises(DataError) as err:
        load_data(path)
    message = str(err.value)
    assert str(path) in message and "session id 'b1' repeats" in message
    assert "rows 2, 4" in message  # file lines: the header is line 1
    assert "\n" not in message


def test_repeated_session_id_in_gz_loghub_traces_is_refused(tmp_path):
    traces = write(
        tmp_path / "Event_traces.csv.gz", 'BlockId,Label,Features\nblk_1,Success,"[E5]"\nblk_1,Fail,"[E7]"\n', gz=True
    )
    with pytest.raises(DataError, match=r"session id 'blk_1' repeats \(rows 2, 3\)"):
        load_data(traces)


def test_repeated_session_id_in_parquet_is_refused(tmp_path):
    df = pl.DataFrame(
        {"session_id": ["a", "b", "c", "b"], "label": [0, 1, 0, 0], "events": [["E5"], ["E7"], ["E5"], ["E5", "E22"]]},
        schema={"session_id": pl.String, "label": pl.Int8, "events": pl.List(pl.String)},
    )
    path = tmp_path / "dup.parquet"
    df.write_parquet(path)
    with pytest.raises(DataError) as err:
        load_data(path)
    message = str(err.value)
    assert str(path) in message and "session id 'b' repeats (rows 2, 4)" in message  # 1-based table rows


def test_unique_ids_still_load(tmp_path):
    path = write(tmp_path / "ok.csv", "session,label,events\nb1,0,E5\nb2,1,E7\n")
    assert load_data(path)["session_id"].to_list() == ["b1", "b2"]
