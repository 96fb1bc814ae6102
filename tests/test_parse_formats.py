"""`parse --format`: any log format, sessions by id / time window / run of lines, labels per session or per line,
and every bad input as one clear line with exit 2. The HDFS fast path stays what `parse` runs by default."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from conftest import loghub_sample as _loghub
from typer.testing import CliRunner, Result

from logsieve.cli import app
from logsieve.errors import LogsieveError
from logsieve.parsing.format_pipeline import SessionRule, parse_format_report
from logsieve.parsing.pipeline import parse_logs_report
from logsieve.parsing.sessionize import BLOCK_RE

FORMAT = """\
pattern = '<Date> <Time> [<Level>] <Content>'
time = { fields = ["Date", "Time"], format = "%Y-%m-%d %H:%M:%S" }
masks = [{ pattern = '\\d+' }]
"""
APP_LINES = [  # (seconds, level, content): jobs j1..j3; one line names two jobs; j2 fails
    (0, "INFO", "job j1 started on node 4"),
    (5, "INFO", "job j2 started on node 7"),
    (12, "INFO", "job j1 wrote 512 bytes"),
    (20, "ERROR", "job j2 failed with code 3"),
    (31, "INFO", "moving job j1 after job j3"),
    (40, "INFO", "job j3 wrote 64 bytes"),
    (65, "INFO", "job j1 finished"),
    (70, "INFO", "job j3 finished"),
]


def _app_log(tmp_path: Path) -> tuple[Path, Path]:
    fmt = tmp_path / "app.toml"
    fmt.write_text(FORMAT)
    log = tmp_path / "app.log"
    log.write_text("".join(f"2024-01-01 00:{s // 60:02d}:{s % 60:02d} [{lvl}] {text}\n" for s, lvl, text in APP_LINES))
    return log, fmt


def _cli(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


# --- sessions three ways ---------------------------------------------------------------------------------------


def test_session_key_with_a_group_several_ids_per_line_and_line_labels(tmp_path: Path) -> None:
    log, fmt = _app_log(tmp_path)
    rule = SessionRule.of(key=r"job (j\d+)")
    res = parse_format_report([log], fmt, rule, label_regex=r"\[ERROR\]")
    s = res.sessions
    assert s["session_id"].to_list() == ["j1", "j2", "j3"]  # the group, not "job j1"; order of first line
    assert s["line_numbers"].to_list() == [[1, 3, 5, 7], [2, 4], [5, 6, 8]]  # line 5 names j1 and j3
    assert s["label"].to_list() == [0, 1, 0]  # anomalous when any of its lines is
    assert s["events"][0][0] == s["events"][1][0]  # "job <*> started on node <*>": the format's mask applies
    assert res.miner is not None and res.stats.lines == len(APP_LINES)
    assert res.files["lines"].to_list() == [len(APP_LINES)]


def test_time_windows_and_line_windows_from_the_cli(tmp_path: Path) -> None:
    log, fmt = _app_log(tmp_path)
    out = tmp_path / "w.parquet"
    r = _cli("parse", log, "--format", fmt, "--window", "30s", "--label-field", "Level", "--out", out)
    # --label-field Level: anything but "-" is anomalous, so every line is; checks the option wiring, not sense
    assert r.exit_code == 0, r.output
    w = pl.read_parquet(out)
    assert w["line_numbers"].to_list() == [[1, 2, 3, 4], [5, 6], [7, 8]] and w["label"].to_list() == [1, 1, 1]
    r = _cli("parse", log, "--format", fmt, "--window", "60s", "--step", "30s", "--out", out)
    assert r.exit_code == 0, r.output
    assert pl.read_parquet(out)["line_numbers"].list.len().to_list() == [4, 6, 4, 2]  # sliding windows overlap
    r = _cli("parse", log, "--format", fmt, "--lines", "3", "--step", "2", "--label-regex", "failed", "--out", out)
    assert r.exit_code == 0, r.output
    lw = pl.read_parquet(out)
    assert lw["line_numbers"].to_list() == [[1, 2, 3], [3, 4, 5], [5, 6, 7], [7, 8]]
    assert lw["label"].to_list() == [0, 1, 0, 0]


def test_per_session_labels_csv_win(tmp_path: Path) -> None:
    log, fmt = _app_log(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\nj1,Anomaly\nj3,Normal\n")
    s = parse_format_report([log], fmt, SessionRule.of(key=r"j\d"), labels=labels).sessions
    assert s["label"].to_list() == [1, None, 0]


def test_hdfs_through_the_format_path_equals_the_fast_path(tmp_path: Path) -> None:
    from logsieve.cli.data import _BLOCK_KEY
    from logsieve.simulator.simulate import simulate_logs

    assert _BLOCK_KEY == BLOCK_RE
    sim = simulate_logs(60, 0.1, seed=3, out_dir=tmp_path)
    fast = parse_logs_report([sim.log], labels=sim.labels).sessions
    general = parse_format_report([sim.log], "HDFS", SessionRule.of(key=BLOCK_RE), sim.labels, templates="hdfs")
    cols = ["session_id", "label", "events", "line_numbers", "start_time"]
    assert general.sessions.select(cols).equals(fast.select(cols))


def test_cli_hdfs_default_and_format_hdfs_are_the_fast_path(tmp_path: Path) -> None:
    from logsieve.simulator.simulate import simulate_logs

    sim = simulate_logs(40, 0.1, seed=4, out_dir=tmp_path)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert _cli("parse", sim.log, "--labels", sim.labels, "--out", a).exit_code == 0
    r = _cli("parse", sim.log, "--labels", sim.labels, "--format", "hdfs", "--session-key", BLOCK_RE, "--out", b)
    assert r.exit_code == 0 and "lines name no block" in r.output
    assert pl.read_parquet(a).equals(pl.read_parquet(b))


# --- bad input: one clear line, exit 2 --------------------------------------------------------------------------


def _bad(tmp_path: Path) -> dict[str, Path]:
    log, fmt = _app_log(tmp_path)
    broken = tmp_path / "broken.txt"
    broken.write_text("<Date> (<Time> <Content>\n")
    labelled = tmp_path / "labelled.toml"
    labelled.write_text(FORMAT + "label = { field = 'Tag' }\n")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.log").write_text(log.read_text())
    (mixed / "b.log").write_text("081109 203615 148 INFO dfs.DataNode: Receiving block blk_1\n" * 9 + "x\n")
    return {"log": log, "fmt": fmt, "broken": broken, "labelled": labelled, "mixed": mixed}


BAD = {
    "format-does-not-compile": (["{log}", "--format", "{broken}", "--lines", "2"], "never closed"),
    "format-label-field-it-lacks": (["{log}", "--format", "{labelled}", "--lines", "2"], "Tag"),
    "label-field-the-format-lacks": (["{log}", "--format", "{fmt}", "--lines", "2", "--label-field", "Node"],
                                     "--label-field Node: format app has no such field"),
    "key-matches-nothing": (["{log}", "--format", "{fmt}", "--session-key", r"inst-\d+"], "matches no line"),
    "key-bad-regex": (["{log}", "--format", "{fmt}", "--session-key", "job (j"], "not a usable regex"),
    "zero-window": (["{log}", "--format", "{fmt}", "--window", "0s"], "longer than zero"),
    "negative-window": (["{log}", "--format", "{fmt}", "--window=-5m"], "longer than zero"),
    "zero-lines": (["{log}", "--format", "{fmt}", "--lines", "0"], "at least 1"),
    "two-rules": (["{log}", "--format", "{fmt}", "--window", "60s", "--lines", "5"], "ONE session rule"),
    "step-with-key": (["{log}", "--format", "{fmt}", "--session-key", "j1", "--step", "2"], "does not apply"),
    "mixed-formats": (["{mixed}", "--format", "{fmt}", "--lines", "5"], "b.log: 10 of 10 lines (100 %) do not fit"),
    "hdfs-templates-elsewhere": (["{log}", "--format", "{fmt}", "--lines", "5", "--templates", "hdfs"], "HDFS's"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_clear_line(tmp_path: Path, case: str) -> None:
    args, message = BAD[case]
    paths = _bad(tmp_path)
    r = _cli("parse", *[a.format(**paths) for a in args], "--out", tmp_path / "o.parquet")
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "o.parquet").exists()


def test_a_few_malformed_lines_are_rejects_not_an_error(tmp_path: Path) -> None:
    log, fmt = _app_log(tmp_path)
    log.write_text(log.read_text() + "not a line of this format\n")
    res = parse_format_report([log], fmt, SessionRule.of(lines=4), rejects=tmp_path / "r.csv")
    assert res.stats.counts == {"malformed": 1} and res.sessions.height == 2
    assert pl.read_csv(tmp_path / "r.csv")["line"].to_list() == [len(APP_LINES) + 1]


def test_rule_needs_exactly_one() -> None:
    with pytest.raises(LogsieveError, match="no session rule"):
        SessionRule.of()


# --- the real samples (skipped without them) ---------------------------------------------------------------------


def test_bgl_raw_to_windows_to_train_to_score(tmp_path: Path) -> None:
    """BGL end to end: raw 2k sample -> 60 s windows labelled by the format's label field -> train -> export ->
    score the same windows."""
    raw = _loghub("BGL")
    parquet, run, bundle = tmp_path / "bgl.parquet", tmp_path / "run", tmp_path / "bundle"
    r = _cli("parse", raw, "--format", "BGL", "--window", "60s", "--out", parquet, "--save-miner", tmp_path / "m.json")
    assert r.exit_code == 0, r.output
    w = pl.read_parquet(parquet)
    assert w.height == 1380 and int(w["label"].sum()) == 125  # both classes, every window labelled
    assert w["line_numbers"].list.len().sum() == 2000
    r = _cli("train", "--preset", "baseline", "--set", "train.epochs=2", "--data", parquet, "--out", run,
             "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (run / "metrics.json").exists() and (run / "config.json").exists()
    r = _cli("export", "--model", run, "--out", bundle, "--templates", tmp_path / "m.json")
    assert r.exit_code == 0, r.output
    r = _cli("score", parquet, "--model", bundle, "--out", tmp_path / "scores.csv")
    assert r.exit_code == 0, r.output
    assert pl.read_csv(tmp_path / "scores.csv").height == w.height


@pytest.mark.parametrize(
    ("system", "key", "sessions"),
    [("OpenStack", r"instance: ([0-9a-f-]{36})", 22), ("Hadoop", r"attempt_\d+_\d+_[mr]_\d+_\d+", 14)],
)
def test_real_logs_by_session_key(tmp_path: Path, system: str, key: str, sessions: int) -> None:
    out = tmp_path / "s.parquet"
    raw = _loghub(system)
    r = _cli("parse", raw, "--format", system, "--session-key", key, "--out", out)
    assert r.exit_code == 0, r.output
    s = pl.read_parquet(out)
    assert s.height == sessions and s["label"].null_count() == sessions  # no labels given
    assert s["start_time"].is_not_null().all() and (s["end_time"] >= s["start_time"]).all()
    text = raw.read_text().splitlines()
    for sid, numbers in s.select("session_id", "line_numbers").iter_rows():  # each line names its session
        assert numbers and all(sid in text[n - 1] for n in numbers)
    keyed = {i + 1 for i, t in enumerate(text) if re.search(key, t)}
    assert keyed == set(s["line_numbers"].explode().to_list())  # and no line the key matches is left out
