"""explore: figures on a hand-made table whose answers are known, the report files, the CLI, the shared sample."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import polars as pl
import pytest
from typer.testing import CliRunner

from logsieve.cli import app
from logsieve.data.explore import compress, explore, summarize, write_report
from logsieve.data.load import load_data
from logsieve.data.splits import split_sessions
from logsieve.table import write_sessions

# sequence -> (normal sessions, anomalous sessions)
TINY = {
    "E1 E2 E3": (4, 0),  # the top sequence, 4 of 12
    "E1 E2": (2, 1),  # carries both labels
    "E1 E9": (0, 3),  # E9 only ever in anomalies
    "E1 E2 E3 E4": (1, 0),  # singleton
    "E5 E5 E5 E1": (1, 0),  # singleton
}


def tiny() -> pl.DataFrame:
    rows = [(seq, lab) for seq, (n0, n1) in TINY.items() for lab in [0] * n0 + [1] * n1]
    return pl.DataFrame(
        {
            "session_id": [f"blk_{i}" for i in range(len(rows))],
            "label": pl.Series([lab for _, lab in rows], dtype=pl.Int8),
            "events": [seq.split() for seq, _ in rows],
        }
    )


def timed(rows: list[tuple[str, int]]) -> pl.DataFrame:
    """Sessions in the given time order, so a chronological split puts the last ones in test."""
    t0 = datetime(2008, 11, 9, 20, 35)
    return pl.DataFrame(
        {
            "session_id": [f"blk_{i}" for i in range(len(rows))],
            "label": pl.Series([lab for _, lab in rows], dtype=pl.Int8),
            "events": [seq.split() for seq, _ in rows],
            "start_time": [t0 + timedelta(minutes=i) for i in range(len(rows))],
        }
    )


def test_counts_lengths_and_events():
    s = summarize(tiny(), split="random", seed=0)
    assert s["sessions"] == 12 and s["classes"] == {"normal": 8, "anomaly": 4}
    assert s["anomaly_rate"] == pytest.approx(4 / 12, abs=1e-6)
    assert s["length"]["normal"]["min"] == 2 and s["length"]["normal"]["max"] == 4
    assert s["length"]["anomaly"] == {"min": 2, "median": 2.0, "mean": 2.0, "p95": 2.0, "max": 2}
    assert list(s["events"]) == ["E1", "E2", "E3", "E4", "E5", "E9"]  # natural order
    assert s["events"]["E2"]["normal"] == {"sessions": 7, "share": 0.875, "occurrences": 7}  # A, B, D
    assert s["events"]["E5"]["normal"]["occurrences"] == 3 and s["events"]["E5"]["normal"]["sessions"] == 1
    only = s["events_only_in"]
    assert only["anomaly"] == ["E9"] and only["normal"] == ["E3", "E4", "E5"]
    assert only["anomalies_with_anomaly_only_event"] == 3
    assert only["anomalies_with_anomaly_only_event_share"] == 0.75


def test_duplication_and_both_labels():
    seq = summarize(tiny())["sequences"]
    assert seq["distinct"] == 5 and seq["distinct_per_class"] == {"normal": 4, "anomaly": 2}
    assert seq["singletons"] == 2 and seq["sessions_per_distinct"] == 2.4
    assert seq["top1_share"] == pytest.approx(4 / 12, abs=1e-6)
    assert [(r["events"], r["count"]) for r in seq["top"]] == [
        ("E1 E2 E3", 4),
        ("E1 E2", 3),
        ("E1 E9", 3),
        ("E1 E2 E3 E4", 1),
        ("E5 E5 E5 E1", 1),
    ]
    assert seq["top_per_class"]["anomaly"][0] == {"events": "E1 E9", "length": 2, "count": 3, "normal": 0, "anomaly": 3}
    both = summarize(tiny())["both_labels"]
    assert both["sequences"] == 1 and both["sessions"] == 3
    ex = both["examples"][0]
    assert (ex["events"], ex["normal"], ex["anomaly"]) == ("E1 E2", 2, 1)


def test_overlap_known_chronological():
    # 10 sessions, test_frac 0.3 and val_frac 0.1: train = first 6, val = 7th, test = last 3
    rows = [("E1 E2 E3", 0)] * 4 + [("E1 E9", 1)] * 2 + [("E7 E7", 1)] + [("E1 E2 E3", 0), ("E1 E9", 1), ("E7 E7", 1)]
    sp = summarize(timed(rows), split="chronological", val_frac=0.1, test_frac=0.3)["split"]
    assert (sp["train"], sp["val"], sp["test"]) == (6, 1, 3)
    assert sp["per_class"]["normal"] == {
        "test_sessions": 1,
        "seen_in_train": 1,
        "seen_share": 1.0,
        "unseen_share": 0.0,
        "lookup_agrees_share": 1.0,
    }
    # "E7 E7" is in val, not in train: it still counts as unseen
    assert sp["per_class"]["anomaly"]["seen_in_train"] == 1 and sp["per_class"]["anomaly"]["unseen_share"] == 0.5
    assert sp["test_seen_share"] == pytest.approx(2 / 3, abs=1e-6)
    assert sp["test_distinct_seen_share"] == pytest.approx(2 / 3, abs=1e-6)


def test_lookup_disagrees_when_train_has_the_other_label():
    rows = [("E1 E2", 0)] * 5 + [("E1 E9", 1)] + [("E1 E2", 1)] * 3 + [("E1 E2", 1)]
    sp = summarize(timed(rows), split="chronological", val_frac=0.1, test_frac=0.1)["split"]
    assert sp["per_class"]["anomaly"]["seen_share"] == 1.0 and sp["per_class"]["anomaly"]["lookup_agrees_share"] == 0.0


def test_overlap_random_matches_brute_force():
    df = tiny()
    sp = summarize(df, split="random", seed=3)["split"]
    train, _, test = split_sessions(df, "random", 0.1, 0.2, 3)
    train_seqs = {tuple(e) for e in train["events"].to_list()}
    seen = [tuple(e) in train_seqs for e in test["events"].to_list()]
    assert sp["test"] == test.height and sp["test_seen_share"] == pytest.approx(sum(seen) / len(seen), abs=1e-6)


def test_unlabelled_sessions_are_their_own_class():
    hide = pl.col("session_id").is_in(["blk_0", "blk_7"])  # an "E1 E2 E3" normal and an "E1 E9" anomaly
    df = tiny().with_columns(pl.when(hide).then(None).otherwise(pl.col("label")).alias("label"))
    s = summarize(df)
    assert s["classes"] == {"normal": 7, "anomaly": 3, "unknown": 2}
    assert s["anomaly_rate"] == pytest.approx(3 / 10, abs=1e-6)
    assert s["events_only_in"]["anomaly"] == ["E9"]  # also seen in an unlabelled session: still anomaly-only


def test_compress():
    assert compress("E5 E5 E5 E22 E11 E9 E11 E9 E26 E26") == "E5×3 E22 E11 E9 E11 E9 E26×2"
    assert compress("E1") == "E1"


def test_report_files(tmp_path):
    df = tiny()
    s = summarize(df)
    paths = write_report(df, s, tmp_path / "out", source="tiny.csv")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert (
        names
        == sorted(p.name for p in paths)
        == [
            "class_balance.png",
            "duplication.png",
            "event_frequency.png",
            "explore.json",
            "length_by_class.png",
            "report.md",
            "train_test_overlap.png",
        ]
    )  # and no temp files left behind
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "out" / "explore.json").read_text())
    assert saved["source"] == "tiny.csv" and saved["sequences"] == s["sequences"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "# Data exploration: tiny.csv" in report and "`E5×3 E1`" in report
    assert "1 sequence(s) occur with both labels (3 sessions)" in report and "E9" in report


def test_cli_explore(tmp_path):
    data = write_sessions(tiny(), tmp_path / "tiny.csv")
    result = CliRunner().invoke(app, ["explore", "--data", str(data), "--out", str(tmp_path / "o"), "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "12 sessions" in result.output and "5 distinct sequences" in result.output
    assert (tmp_path / "o" / "report.md").exists()
    assert json.loads((tmp_path / "o" / "explore.json").read_text())["split"]["seed"] == 1


def test_cli_explore_joins_labels(tmp_path):
    unlabelled = tiny().with_columns(pl.lit(None, dtype=pl.Int8).alias("label"))
    data = write_sessions(unlabelled, tmp_path / "tiny.csv")
    (tmp_path / "labels.csv").write_text(
        "BlockId,Label\n"
        + "".join(
            f"{sid},{'Anomaly' if lab else 'Normal'}\n" for sid, lab in tiny().select("session_id", "label").iter_rows()
        )
    )
    args = ["explore", "--data", str(data), "--out", str(tmp_path / "o"), "--labels", str(tmp_path / "labels.csv")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "explore.json").read_text())["classes"] == {"normal": 8, "anomaly": 4}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{tmp}/missing.csv"], "missing.csv: file not found"),
        (["--data", "{tmp}/tiny.csv", "--split", "chronological"], "chronological split needs a start_time"),
        (["--data", "{tmp}/tiny.csv", "--split", "sideways"], "unknown split method 'sideways'"),
    ],
)
def test_cli_explore_errors_are_one_line(tmp_path, args, message):
    write_sessions(tiny(), tmp_path / "tiny.csv")
    args = [a.format(tmp=tmp_path) for a in args]
    result = CliRunner().invoke(app, ["explore", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)  # clean exit, not a crash
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert not (tmp_path / "o" / "report.md").exists()


def test_out_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(Exception, match="not a directory"):
        write_report(tiny(), summarize(tiny()), tmp_path / "file")


@pytest.mark.shared_data
def test_shared_sample(shared_hdfs, tmp_path):
    """Figures stated in the data README; the random split's overlap checked by brute force."""
    path = shared_hdfs / "sessions_sample.csv.gz"
    res = explore(path, tmp_path, split="random", seed=0)
    s = res.summary
    assert s["sessions"] == 92_009 and s["classes"] == {"normal": 89_318, "anomaly": 2_691}
    assert s["sequences"]["distinct"] == 6_004
    assert s["sequences"]["distinct_per_class"] == {"normal": 5_052, "anomaly": 952}
    assert 14_000 < s["sequences"]["top"][0]["count"] < 16_000  # "the top sequence occurs ~15,000 times"
    assert "E19" not in s["events"] and "E30" not in s["events"]
    sp = s["split"]
    train, _, test = split_sessions(load_data(path), "random", 0.1, 0.2, 0)
    train_seqs = set(train["events"].list.join(" ").to_list())
    test_seqs = test["events"].list.join(" ").to_list()
    assert sp["test_seen_share"] == pytest.approx(sum(q in train_seqs for q in test_seqs) / len(test_seqs), abs=1e-5)
    assert sp["per_class"]["anomaly"]["seen_share"] < sp["per_class"]["normal"]["seen_share"]
    assert (tmp_path / "report.md").exists()
