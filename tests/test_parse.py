"""parse_logs end to end: sessions, rejects, worker processes, mining mode, the CLI, and agreement with the
published HDFS sequences."""

from __future__ import annotations

import gzip

import polars as pl
import pytest
from typer.testing import CliRunner

from logsieve.cli import app
from logsieve.data.load import load_data
from logsieve.errors import DataError
from logsieve.parsing.pipeline import parse_logs, parse_logs_report

LIFE = [  # (seconds, content) of one block's write-then-delete life, {b} = block id
    (0, "dfs.DataNode$DataXceiver: Receiving block {b} src: /10.0.0.1:4100 dest: /10.0.0.1:50010"),
    (0, "dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /user/root/part-00001. {b}"),
    (1, "dfs.DataNode$PacketResponder: PacketResponder 0 for block {b} terminating"),
    (1, "dfs.DataNode$PacketResponder: Received block {b} of size 67108864 from /10.0.0.1"),
    (2, "dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: "
        "10.0.0.1:50010 is added to {b} size 67108864"),
    (9, "dfs.FSNamesystem: BLOCK* NameSystem.delete: {b} is added to invalidSet of 10.0.0.1:50010"),
    (9, "dfs.FSDataset: Deleting block {b} file /mnt/hadoop/dfs/data/current/subdir1/{b}"),
]  # fmt: skip
EVENTS = ["E5", "E22", "E11", "E9", "E26", "E23", "E21"]


def write_log(path, blocks: int = 30, extra: list[str] = ()) -> list[str]:
    """Interleaved lives of ``blocks`` blocks (block i starts at second i); returns the block ids."""
    ids = [f"blk_{(-1) ** i * (1000 + i)}" for i in range(blocks)]
    rows = sorted((i + dt, i, k, text.format(b=b)) for i, b in enumerate(ids) for k, (dt, text) in enumerate(LIFE))
    lines = [f"081109 10{t // 60:02d}{t % 60:02d} {i + 10} INFO {text}" for t, i, _, text in rows]
    body = "\n".join(lines + list(extra)) + "\n"
    path.write_bytes(gzip.compress(body.encode()) if path.suffix == ".gz" else body.encode())
    return ids


def test_sessions_rejects_and_labels(tmp_path):
    log = tmp_path / "hdfs.log"
    ids = write_log(log, extra=["garbage", "081109 100059 5 INFO dfs.X: BLOCK* NameSystem.allocateBlock: /no/block",
                                "081109 100059 5 INFO dfs.X: something new for blk_1000"])  # fmt: skip
    labels = tmp_path / "anomaly_label.csv"
    labels.write_text(
        "BlockId,Label\n" + "\n".join(f"{b},{'Anomaly' if i % 3 == 0 else 'Normal'}" for i, b in enumerate(ids))
    )
    res = parse_logs_report([log], labels=labels, rejects=tmp_path / "rejects.csv")
    s = res.sessions
    assert s["session_id"].to_list() == ids
    assert all(ev == EVENTS for ev in s["events"].to_list())
    assert s["label"].to_list() == [1 if i % 3 == 0 else 0 for i in range(len(ids))]
    assert {"start_time", "end_time", "line_numbers"} <= set(s.columns)
    assert res.stats.counts == {"malformed": 1, "no_template": 1} and res.stats.unblocked == 1
    assert pl.read_csv(tmp_path / "rejects.csv")["reason"].to_list() == ["malformed", "no_template"]


def test_worker_threads_give_the_same_table(tmp_path):
    log = tmp_path / "hdfs.log.gz"
    write_log(log, blocks=300)
    one = parse_logs_report([log], n_jobs=1, chunk_bytes=4096).sessions
    two = parse_logs_report([log], n_jobs=2, chunk_bytes=4096).sessions
    assert one.height == 300 and one.equals(two)
    assert one["line_numbers"].list.len().sum() == 300 * len(LIFE)


def test_files_with_overlapping_times_merge_in_time_order(tmp_path):
    """Two nodes' logs in one directory: a block's events follow the clock; line numbers run across the files."""
    folder = tmp_path / "nodes"
    folder.mkdir()
    head = "INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_7 terminating"
    (folder / "a.log").write_text(f"081109 100005 1 {head}\n081109 100009 1 {head}\n")
    (folder / "b.log").write_text(
        "081109 100001 2 INFO dfs.DataNode$DataXceiver: Receiving block blk_7 src: /1.1.1.1:1 dest: /1.1.1.1:2\n"
        "081109 100007 2 INFO dfs.FSDataset: Deleting block blk_7 file /data/blk_7\n"
    )
    row = parse_logs([folder]).row(0, named=True)
    assert row["events"] == ["E5", "E11", "E21", "E11"] and row["line_numbers"] == [3, 1, 4, 2]
    assert str(row["start_time"]).endswith("10:00:01") and str(row["end_time"]).endswith("10:00:09")


def test_mining_mode_and_a_saved_miner(tmp_path):
    log = tmp_path / "hdfs.log"
    write_log(log, blocks=20)
    res = parse_logs_report([log], templates="mine")
    events = res.sessions["events"].to_list()
    assert len({tuple(e) for e in events}) == 1 and len(set(events[0])) == len(LIFE)  # 7 distinct mined ids
    res.miner.save(tmp_path / "miner.json")
    again = parse_logs([log], templates=str(tmp_path / "miner.json"))
    assert again["events"].to_list() == events


def test_clear_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        parse_logs([tmp_path / "missing.log"])
    (tmp_path / "junk.log").write_text("not a log line\n")
    with pytest.raises(DataError, match="no block sessions found.*1 malformed"):
        parse_logs([tmp_path / "junk.log"])
    write_log(tmp_path / "ok.log", blocks=2)
    with pytest.raises(DataError, match="--templates"):
        parse_logs([tmp_path / "ok.log"], templates="nonsense")


def test_load_data_parses_raw_logs(tmp_path):
    ids = write_log(tmp_path / "raw.log", blocks=5)
    assert load_data(tmp_path / "raw.log")["session_id"].to_list() == ids


def test_cli_parse(tmp_path):
    write_log(tmp_path / "a.log", blocks=10)
    out = tmp_path / "sessions.parquet"
    result = CliRunner().invoke(
        app, ["parse", str(tmp_path / "a.log"), "--out", str(out), "--rejects", str(tmp_path / "r.csv")]
    )
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out).height == 10 and "10 sessions" in result.output
    bad = CliRunner().invoke(app, ["parse", str(tmp_path / "nope.log"), "--out", str(out)])
    assert bad.exit_code == 2 and "file not found" in bad.output and "Traceback" not in bad.output
    assert len(bad.output.strip().splitlines()) == 1


@pytest.mark.shared_data
def test_agreement_with_published_sequences(shared_hdfs):
    """All 11,501 blocks of the 2 % sample are complete, so every rebuilt sequence must equal the published one."""
    sessions = parse_logs(
        [shared_hdfs / "raw" / "hdfs_sample_2pct.log.gz"], labels=shared_hdfs / "blocks_labelled.csv.gz"
    )
    published = pl.read_csv(shared_hdfs / "sessions_with_ids.csv.gz").select(
        session_id="block_id", published=pl.col("events").str.split(" "), published_label="label"
    )
    both = sessions.join(published, on="session_id", how="inner")
    assert sessions.height == 11_501 and both.height == 11_501
    assert (both["events"] == both["published"]).sum() == 11_501
    assert (both["label"] == both["published_label"]).all() and sessions["label"].sum() == 350
    assert sessions["line_numbers"].list.len().sum() == 222_579
