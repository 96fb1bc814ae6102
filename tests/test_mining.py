"""Template miner: masking, Drain behaviour, determinism, online save/load, and accuracy on HDFS_2k."""

from __future__ import annotations

import json

import polars as pl
import pytest

from logsieve.errors import DataError, LogsieveError
from logsieve.parsing.accuracy import grouping_accuracy
from logsieve.parsing.mining import UNKNOWN, TemplateMiner

LINES = [
    "PacketResponder 1 for block blk_38865049064139660 terminating",
    "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106 dest: /10.250.19.102:50010",
    "PacketResponder 2 for block blk_-6952295868487656571 terminating",
    "Deleting block blk_-1 file /mnt/hadoop/dfs/data/current/subdir19/blk_-1",
    "Verification succeeded for blk_9",
    "Receiving block blk_7 src: /10.0.0.1:1 dest: /10.0.0.2:50010",
    "BLOCK* ask 10.250.17.177:50010 to delete  blk_-8 blk_9 blk_10",
    "BLOCK* ask 10.250.10.213:50010 to delete  blk_4",
    "Deleting block blk_5 file /mnt/hadoop/dfs/data/current/blk_5",
]


def test_masks_block_ids_ips_paths_and_numbers():
    masked = TemplateMiner().mask(LINES).to_list()
    assert masked[0] == "PacketResponder <NUM> for block <BLK> terminating"
    assert masked[1] == "Receiving block <BLK> src: /<IP> dest: /<IP>"
    assert masked[3] == "Deleting block <BLK> file <PATH>"
    # A list of block ids is one variable (whitespace is left as is: the tree splits on it anyway).
    assert masked[6].split() == masked[7].split() == ["BLOCK*", "ask", "<IP>", "to", "delete", "<BLK>"]
    # Digits inside words are not numbers; a path needs a word after its slash.
    masked = TemplateMiner().mask(["subdir19 took 3.5 s, user_12 /tmp"]).to_list()
    assert masked == ["subdir19 took <NUM> s, user_12 <PATH>"]


def test_custom_masks_empty_and_missing_messages():
    miner = TemplateMiner(masks=[(r"user\d+", "<USER>")])
    ids = miner.fit_transform(pl.Series(["login user1 ok", "login user22 ok", "", None])).to_list()
    assert ids == ["M1", "M1", "M2", "M2"]  # a missing message is an empty one
    assert miner.templates_["template"].to_list() == ["login <USER> ok", ""]
    with pytest.raises(LogsieveError, match="not a valid regex"):
        TemplateMiner(masks=[("(", "x")]).mask(["a"])


def test_groups_lines_of_one_template_and_separates_others():
    ids = TemplateMiner().fit_transform(LINES).to_list()
    assert ids[0] == ids[2] and ids[1] == ids[5] and ids[3] == ids[8] and ids[6] == ids[7]
    assert len({ids[0], ids[1], ids[3], ids[4], ids[6]}) == 5
    assert ids[0] == "M1" and ids[1] == "M2"  # numbered in order of first appearance


def test_similarity_threshold_decides_merge_and_generalises_template():
    # Same leading tokens (same tree leaf), 5 of 7 tokens equal: similarity 0.714.
    lines = ["session opened for user alice from office", "session opened for user bob from home"]
    merged = TemplateMiner(sim_threshold=0.7)
    assert merged.fit_transform(lines).to_list() == ["M1", "M1"]
    assert merged.templates_["template"].to_list() == ["session opened for user <*> from <*>"]
    assert merged.templates_["count"].to_list() == [2]
    split = TemplateMiner(sim_threshold=0.75)
    assert split.fit_transform(lines).to_list() == ["M1", "M2"]


def test_depth_decides_how_many_leading_tokens_route():
    lines = ["start job now", "stop job now"]  # 2 of 3 tokens equal: similar enough when they meet
    assert TemplateMiner(depth=3).fit_transform(lines).to_list() == ["M1", "M1"]  # no token layer: same leaf
    assert TemplateMiner(depth=4).fit_transform(lines).to_list() == ["M1", "M2"]  # first token routes apart
    assert TemplateMiner(depth=4).fit_transform(["start", "stop"]).to_list() == ["M1", "M2"]  # compared, 0 similar


def test_transform_does_not_learn_and_marks_unknown():
    miner = TemplateMiner().partial_fit(LINES[:3])
    before = miner.templates_
    out = miner.transform(["PacketResponder 7 for block blk_1 terminating", "something never seen before"])
    assert out.to_list() == ["M1", UNKNOWN]
    assert miner.templates_.equals(before)


def test_deterministic_across_instances_and_input_types():
    a = TemplateMiner().fit_transform(LINES * 3)
    b = TemplateMiner().fit_transform(pl.Series("content", LINES * 3))
    assert a.to_list() == b.to_list()
    assert len(a) == 3 * len(LINES)


def test_save_load_then_continue_equals_one_uninterrupted_fit(tmp_path):
    first, second = LINES[:5] + ["user alice logged in"], LINES[3:] + ["user bob logged in", "disk sda full"]
    whole = TemplateMiner()
    whole.partial_fit(first).partial_fit(second)

    head = TemplateMiner().partial_fit(first)
    head.save(tmp_path / "miner.json")
    resumed = TemplateMiner.load(tmp_path / "miner.json").partial_fit(second)

    assert resumed.templates_.equals(whole.templates_)
    probe = LINES + ["user carol logged in", "disk sdb full"]
    assert resumed.transform(probe).to_list() == whole.transform(probe).to_list()
    assert json.loads((tmp_path / "miner.json").read_text())["version"] == 1


def test_load_rejects_bad_state(tmp_path):
    with pytest.raises(DataError, match="not found"):
        TemplateMiner.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="bad.json"):
        TemplateMiner.load(tmp_path / "bad.json")


def test_max_children_sends_overflow_to_wildcard_branch():
    lines = [f"alpha{c} starts now" for c in "abcdef"]  # same length, different first token
    miner = TemplateMiner(max_children=3).partial_fit(lines)
    # Two named branches plus one wildcard branch: the last four lines share a leaf and merge (2/3 equal).
    assert miner.transform(lines).to_list() == ["M1", "M2", "M3", "M3", "M3", "M3"]


def test_grouping_accuracy_counts_only_exact_groups():
    assert grouping_accuracy(["a", "a", "b"], ["x", "x", "y"]) == 1.0
    assert grouping_accuracy(["a", "a", "a"], ["x", "x", "y"]) == 0.0  # merged: every line wrong
    assert grouping_accuracy(["a", "b", "c"], ["x", "x", "y"]) == pytest.approx(1 / 3)  # split x, y fine


def test_hdfs_2k_grouping_accuracy(shared_hdfs):
    df = pl.read_csv(shared_hdfs / "raw" / "HDFS_2k.log_structured.csv")
    miner = TemplateMiner()
    ids = miner.fit_transform(df["Content"])
    assert grouping_accuracy(ids, df["EventId"]) >= 0.99
    assert miner.templates_["count"].sum() == df.height
