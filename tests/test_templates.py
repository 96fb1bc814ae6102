"""Known-template matcher: the shipped set, ait's first-match rule, exactness of digit masking, HDFS_2k."""

from __future__ import annotations

import random

import polars as pl
import pytest

from logsieve.parsing.templates import (
    TemplateMatcher,
    load_templates,
    mask_digits,
    matches,
    template_parts,
)

HEAD = "081109 203615 148 INFO dfs.DataNode$DataXceiver: "


def test_shipped_set_is_e1_to_e30():
    templates = load_templates()
    assert [t for t, _ in templates] == [f"E{i}" for i in range(1, 31)]
    assert dict(templates)["E22"] == "<*>BLOCK* NameSystem<*>allocateBlock:<*>"


def test_parts_follow_ait():
    assert template_parts("<*>PacketResponder <*> for block <*> terminating<*>") == [
        "PacketResponder ",
        " for block ",
        " terminating",
    ]
    assert template_parts("<*>BLOCK* ask <*> to delete <*>") == ["BLOCK* ask ", " to delete "]
    assert matches(["a", "b"], "xxaxxbxx") and not matches(["b", "a"], "xxaxxbxx")
    assert not matches(["ab", "ba"], "aba")  # parts may not overlap


def test_first_match_wins_and_unknown_is_null():
    m = TemplateMatcher()
    both = HEAD + "Received block blk_1 src: /10.0.0.1:1 dest: /10.0.0.2:2 of size 5 from /10.0.0.3"
    assert m.match_text(both) == "E6"  # E9 matches too, but E6 comes first
    lines = pl.Series([
        HEAD + "Receiving block blk_-12 src: /10.0.0.1:50010 dest: /10.0.0.1:50010",
        "081109 203615 1 INFO dfs.DataNode$PacketResponder: PacketResponder 2 for block blk_3 terminating",
        HEAD + "Something nobody logged before",
        both,
    ])  # fmt: skip
    assert m.match(lines).to_list() == ["E5", "E11", None, "E6"]


def test_digit_masking_changes_no_answer():
    """Lines built from template parts, digits and noise: the masked fast path equals the rule on raw text."""
    rng = random.Random(7)
    parts = sorted({p for _, t in load_templates() for p in template_parts(t)})
    noise = ["blk_-1234", "10.250.1.2:50010", "/user/root/x", " ", "size", "0", "99", "to", "#"]
    lines = [HEAD + " ".join(rng.choice(parts + noise) for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    m = TemplateMatcher()
    fast = m.match(pl.Series(lines)).to_list()
    assert fast == [m.match_text(line) for line in lines]
    assert len(set(fast)) > 10  # the sample exercises many templates
    masked = pl.Series(mask_digits("\n".join(lines).encode()).decode().split("\n"))
    assert m.decode(m.codes(masked)).to_list() == fast


def test_templates_with_digits_are_refused():
    with pytest.raises(ValueError, match="digits"):
        TemplateMatcher([("X1", "<*>port 8080<*>")])


@pytest.mark.shared_data
def test_hdfs_2k_accuracy_is_100_percent(shared_hdfs):
    """Every line of loghub's HDFS_2k gets the ground-truth template (2k numbering mapped to E1..E30)."""
    raw = shared_hdfs / "raw"
    truth = pl.read_csv(raw / "HDFS_2k.log_structured.csv", infer_schema=False)
    mapping = pl.read_csv(shared_hdfs / "templates_2k_to_full.csv", infer_schema=False)
    want = truth.join(
        mapping.select("EventId_2k", full="EventId"), left_on="EventId", right_on="EventId_2k", how="left"
    )
    lines = pl.read_lines(raw / "HDFS_2k.log")["line"]
    got = TemplateMatcher().match(lines)
    assert len(got) == 2000 and want["full"].null_count() == 0
    assert (got == want["full"]).sum() == 2000
