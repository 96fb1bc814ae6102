"""Explanations of alerts: occlusion finds the deciding event (tree and RNN), nearest normal profiles in words,
decision paths, and raw lines read back by line number in one pass per file."""

from __future__ import annotations

import gzip

import numpy as np
import polars as pl
import pytest

from logsieve.config import resolve_preset
from logsieve.models.baselines import CountBaseline
from logsieve.parsing.lines import MAX_LINE_BYTES
from logsieve.serving.bundle import Bundle, normal_profiles
from logsieve.serving.explain import explain_sessions, nearest_normals, session_lines
from logsieve.serving.source_lines import read_back
from logsieve.serving.tree_path import decision_paths
from logsieve.training.detector import Detector

DECIDER = "E99"


def e99_data(seed: int = 0, blocks: int = 1500) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Normal simulated sessions; an anomaly is a normal session with E99 put somewhere in the middle, and E99
    occurs nowhere else, so E99 alone decides. Returns train, val, test (test: normal sessions + E99)."""
    from logsieve.simulator.simulate import simulate_sessions

    normal = simulate_sessions(blocks, anomaly_rate=0.0, seed=seed).filter(pl.col("label") == 0)
    rng = np.random.default_rng(seed)
    events = normal["events"].to_list()
    flagged = [ev[:k] + [DECIDER] + ev[k:] for ev, k in zip(events, rng.integers(1, 4, len(events)), strict=True)]
    rows = pl.DataFrame({
        "session_id": [*normal["session_id"], *(f"{s}-e99" for s in normal["session_id"])],
        "label": pl.Series([0] * len(events) + [1] * len(events), dtype=pl.Int8),
        "events": pl.Series([*events, *flagged], dtype=pl.List(pl.String)),
    }).sample(fraction=1.0, shuffle=True, seed=seed)  # fmt: skip
    n = rows.height
    return rows[: n // 2], rows[n // 2 : 3 * n // 4], rows[3 * n // 4 :]


def tree_bundle(train: pl.DataFrame, val: pl.DataFrame) -> Bundle:
    model = CountBaseline("decision-tree", seed=0).fit(train, val)
    return Bundle(model, "decision-tree", "decision-tree", {}, list(model.vocab_.events_),
                  normal_profiles=normal_profiles(train))  # fmt: skip


def test_occlusion_finds_the_deciding_event_of_a_tree():
    train, val, test = e99_data()
    bundle = tree_bundle(train, val)
    flagged = test.filter(pl.col("label") == 1).head(20)
    found = explain_sessions(bundle, flagged)
    assert all(f["score"] >= bundle.threshold for f in found)
    for f in found:
        top = f["weighing"][0]
        assert top["event"] == DECIDER and top["flips"] and top["count"] == 1
        assert top["score_without"] < bundle.threshold and top["drop"] > 0.5
        assert (
            "E99 count ≥ 1" in f["decision_path"]["text"]
            and f["decision_path"]["text"].endswith("training sessions)")
            and "→ anomaly" in f["decision_path"]["text"]
        )
        assert f["lines"] is None  # session-file input: no raw lines


@pytest.fixture
def one_thread():
    """Torch on one thread: on a shared 2-core machine more threads make these small RNNs slower, not faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_occlusion_finds_the_deciding_event_of_an_rnn(one_thread):
    train, val, test = e99_data(seed=1, blocks=300)
    cfg = resolve_preset("improved", seed=0, overrides={
        "train": {"epochs": 30, "patience": 30, "lr": 0.02, "batch_size": 32},
        "model": {"cell": "gru", "hidden_size": 16, "embed_dim": 8, "bidirectional": False, "pooling": "max"},
    })  # fmt: skip
    det = Detector(cfg, progress=False).fit(train, val)
    bundle = Bundle(det, "rnn", "improved", {}, list(det.vocab_.events_), normal_profiles=normal_profiles(train))
    flagged = test.filter(pl.col("label") == 1).head(10)
    found = explain_sessions(bundle, flagged)
    assert [f["weighing"][0]["event"] for f in found] == [DECIDER] * len(found)
    assert all(f["weighing"][0]["flips"] and f["weighing"][0]["drop"] > 0.5 for f in found)
    assert all(w["drop"] < 0.1 for f in found for w in f["weighing"][1:])  # nothing else matters
    assert all(f["decision_path"] is None for f in found)


def test_nearest_normal_in_words():
    profiles = pl.DataFrame({
        "events": [["E3"] * 8 + ["E5", "E21"], ["E3"] * 2 + ["E5"]],
        "sessions": [120, 7],
    }, schema={"events": pl.List(pl.String), "sessions": pl.Int64})  # fmt: skip
    train = pl.DataFrame({"session_id": ["a", "b"], "label": pl.Series([0, 1], dtype=pl.Int8),
                          "events": [["E3", "E5", "E21"], ["E3", "E5"]]})  # fmt: skip
    model = CountBaseline("logistic-regression").fit(train, train)
    bundle = Bundle(model, "logistic-regression", "lr", {}, ["E3", "E5", "E21"], normal_profiles=profiles)
    near = nearest_normals(bundle, pl.Series([["E3"] * 6 + ["E5", "E42"]]), k=2)[0]
    assert near["text"].startswith("E42 ×1, never seen in training; E3 ×6 where the closest normal blocks have ×8; "
                                   "no E21 where the closest normal blocks have ×1")  # fmt: skip
    assert "120 normal training sessions" in near["text"]
    assert [n["sessions"] for n in near["neighbours"]] == [120, 7]
    assert near["neighbours"][0]["distance"] == 2 + 1 + 1  # two E3, one E21, one never-seen E42
    empty = Bundle(model, "logistic-regression", "lr", {}, ["E3", "E5", "E21"])
    assert nearest_normals(empty, pl.Series([["E3"]])) == [None]


def test_decision_path_merges_tests_of_one_event_into_a_range():
    rows = [(["E3"] * n + ["E5"], int(n < 3 or n > 7)) for n in range(1, 11)] * 5
    labels = pl.Series([r[1] for r in rows], dtype=pl.Int8)
    train = pl.DataFrame({"session_id": [str(i) for i in range(len(rows))], "label": labels,
                          "events": [r[0] for r in rows]})  # fmt: skip
    model = CountBaseline("decision-tree").fit(train, train)
    paths = decision_paths(model, pl.Series([["E3"] * 5 + ["E5"], ["E3"] * 9 + ["E5"]]), model.threshold_)
    assert paths[0]["text"].startswith("3 ≤ E3 count ≤ 7 → normal") and paths[0]["verdict"] == "normal"
    assert paths[1]["text"].startswith("E3 count ≥ 8 → anomaly")
    other = CountBaseline("logistic-regression").fit(train, train)
    assert decision_paths(other, pl.Series([["E3"]]), 0.5) == [None]


def test_read_back_one_pass_per_file_gz_and_no_final_newline(tmp_path):
    plain, packed = tmp_path / "a.log", tmp_path / "b.log.gz"
    plain.write_bytes(b"one\ntwo\r\nthree\n" + b"x" * (MAX_LINE_BYTES + 10) + b"\nlast without newline")
    packed.write_bytes(gzip.compress(b"b1\n\xff\xfe bad bytes\nb3\n"))
    files = pl.DataFrame({"source": [str(plain), str(packed), "-"], "offset": [0, 5, 8], "lines": [5, 3, 2]})
    got = read_back(files, [2, 4, 5, 7, 8, 9, 2])
    assert got[2].text == "two" and got[2].line == 2 and got[5].text == "last without newline"
    assert got[4].text.endswith(f"({MAX_LINE_BYTES + 10:,} bytes)") and len(got[4].text) < 500
    assert got[7].source == str(packed) and got[7].line == 2 and got[7].text == "\ufffd\ufffd bad bytes"
    assert got[8].text == "b3" and got[9].source == "-" and got[9].text is None  # stdin cannot be read twice
    plain.unlink()
    assert read_back(files, [1])[1].text is None  # a file gone since parsing: no text, no traceback


def test_session_lines_show_weighing_lines_first_and_count_the_rest(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(1, 11)))
    files = pl.DataFrame({"source": [str(log)], "offset": [0], "lines": [10]})
    sessions = pl.DataFrame({"events": [["E1", "E2", "E99", "E2", "E1"]], "line_numbers": [[2, 4, 6, 8, 10]]})
    ((shown, omitted),) = session_lines(sessions, files, [{"E99"}], show=2)
    assert [(s["line"], s["event"], s["weighing"], s["text"]) for s in shown] == [
        (2, "E1", False, "line 2"), (6, "E99", True, "line 6")]  # fmt: skip
    assert omitted == 3
    ((everything, none_left),) = session_lines(sessions, files, [set()], show=None)
    assert len(everything) == 5 and none_left == 0
    assert session_lines(sessions, None, [set()], show=None) == [(None, 0)]


@pytest.mark.parametrize("n", [0, 1])
def test_explain_nothing_or_one_event_type(n):
    train, val, _ = e99_data()
    bundle = tree_bundle(train, val)
    sessions = pl.DataFrame({"session_id": ["s"] * n, "events": [[DECIDER]] * n},
                            schema={"session_id": pl.String, "events": pl.List(pl.String)})  # fmt: skip
    found = explain_sessions(bundle, sessions)
    assert len(found) == n and all(f["weighing"] == [] for f in found)  # one type: nothing to leave out
