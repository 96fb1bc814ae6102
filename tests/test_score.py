"""`logsieve score`: the score table, raw logs located per file, outputs by suffix, explanations, metrics with
labels, and bad input (garbage, non-UTF-8, a 1 MB line, unknown events, empty and missing files)."""

from __future__ import annotations

import json

import polars as pl
import pytest
from rich.console import Console
from typer.testing import CliRunner

from logsieve.cli import app
from logsieve.models.baselines import CountBaseline
from logsieve.parsing.pipeline import locate_sessions, parse_logs_report
from logsieve.serving import bundle as bundle_module
from logsieve.serving.bundle import Bundle, normal_profiles
from logsieve.serving.output import print_explanations, print_table
from logsieve.serving.scoring import ALERT, SCORE_SCHEMA, score_inputs, score_table

LIFE = [  # (event, content) of a block's normal life; {b} = block id
    ("E5", "dfs.DataNode$DataXceiver: Receiving block {b} src: /10.0.0.1:4100 dest: /10.0.0.1:50010"),
    ("E22", "dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /user/root/part-00001. {b}"),
    ("E11", "dfs.DataNode$PacketResponder: PacketResponder 0 for block {b} terminating"),
    ("E9", "dfs.DataNode$PacketResponder: Received block {b} of size 67108864 from /10.0.0.1"),
    ("E26", "dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.0.0.1:50010 is added to {b} "
            "size 67108864"),
    ("E23", "dfs.FSNamesystem: BLOCK* NameSystem.delete: {b} is added to invalidSet of 10.0.0.1:50010"),
    ("E21", "dfs.FSDataset: Deleting block {b} file /mnt/hadoop/dfs/data/current/subdir1/{b}"),
]  # fmt: skip
FAIL = ("E20", "dfs.FSDataset: Unexpected error trying to delete block {b}. BlockInfo not found in volumeMap.")
NEW = ("E2", "dfs.DataBlockScanner: Verification succeeded for {b}")  # never seen in training


def life(kind: str) -> list[tuple[str, str]]:
    """normal | anomaly (the delete fails) | new (normal plus an event type training never saw)."""
    return {"normal": LIFE, "anomaly": [*LIFE[:-1], FAIL], "new": [*LIFE[:2], NEW, *LIFE[2:]]}[kind]


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    kinds = ["normal"] * 60 + ["anomaly"] * 20
    train = pl.DataFrame({
        "session_id": [f"t{i}" for i in range(len(kinds))],
        "label": pl.Series([int(k == "anomaly") for k in kinds], dtype=pl.Int8),
        "events": [[e for e, _ in life(k)] for k in kinds],
    })  # fmt: skip
    model = CountBaseline("decision-tree").fit(train, train)
    return Bundle(model, "decision-tree", "decision-tree", {}, list(model.vocab_.events_),
                  normal_profiles=normal_profiles(train))  # fmt: skip


@pytest.fixture
def use_bundle(bundle, monkeypatch):
    """`score --model X` loads this in-memory bundle (export/load are tested with the bundle format)."""
    monkeypatch.setattr(bundle_module, "load_bundle", lambda path: bundle)
    return bundle


def write_log(path, blocks: dict[str, str], start: int = 0, extra: list[str] = ()) -> dict[str, list[int]]:
    """Blocks (id -> kind) written one after the other, a second per line; returns id -> its line numbers."""
    lines, where = [], {}
    for b, kind in blocks.items():
        for _, text in life(kind):
            where.setdefault(b, []).append(len(lines) + 1)
            t = start + len(lines)
            lines.append(f"081109 10{t // 60 % 60:02d}{t % 60:02d} 7 INFO {text.format(b=b)}")
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"".join(x.encode() + b"\n" for x in extra))
    return where


def test_score_table_schema_verdicts_and_new_events(bundle):
    sessions = pl.DataFrame({
        "session_id": ["ok", "bad", "new"],
        "events": [[e for e, _ in life(k)] for k in ("normal", "anomaly", "new")],
        "start_time": pl.Series(["2008-11-09 10:00:00"] * 3).str.to_datetime(),
    })  # fmt: skip
    table = score_table(bundle, sessions)
    assert table.schema == pl.Schema(SCORE_SCHEMA)
    assert table["verdict"].to_list() == ["normal", "anomaly", "normal"]
    assert table["unknown_events"].to_list() == [0, 0, 1] and table["new_event"].to_list() == [False, False, True]
    assert table.select(ALERT).to_series().to_list() == [False, True, True]  # a new event type is itself an alert
    assert table["start_time"].null_count() == 0 and table["source"].null_count() == 3
    assert table["events"].to_list() == [7, 7, 8] and (table["threshold"] == bundle.threshold).all()


def test_raw_logs_are_located_per_file(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    a = write_log(folder / "a.log", {"blk_1": "normal", "blk_2": "anomaly"})
    b = write_log(folder / "b.log", {"blk_3": "normal", "blk_4": "new"}, start=100)
    (folder / "a0.log").write_bytes(b"")  # an empty file among them has no lines and shifts nothing
    res = parse_logs_report([folder])
    assert res.files.rows() == [(str(folder / "a.log"), 0, 14), (str(folder / "a0.log"), 14, 0),
                                (str(folder / "b.log"), 14, 15)]  # fmt: skip
    got = {r["session_id"]: r for r in locate_sessions(res.sessions, res.files).iter_rows(named=True)}
    for ids, name in ((a, "a.log"), (b, "b.log")):
        for sid, lines in ids.items():
            assert (got[sid]["source"], got[sid]["first_line"], got[sid]["last_line"]) == (
                str(folder / name), lines[0], lines[-1])  # fmt: skip
    twice = parse_logs_report([folder / "b.log", folder / "b.log"])  # the same file twice: two inputs
    assert twice.files["offset"].to_list() == [0, 15]


def test_a_session_spanning_files_is_located_in_the_file_of_its_first_line(tmp_path):
    receive = "INFO dfs.DataNode$DataXceiver: Receiving block {} src: /1.1.1.1:1 dest: /1.1.1.1:2"
    delete = "081109 {} INFO dfs.FSDataset: Deleting block blk_9 file /data/blk_9\n"
    x = f"081109 100000 1 {receive.format('blk_9')}\n081109 100001 1 {receive.format('blk_8')}\n"
    (tmp_path / "x.log").write_text(x + delete.format("100002 1"))
    (tmp_path / "y.log").write_text(delete.format("100003 2"))
    res = parse_logs_report([tmp_path / "x.log", tmp_path / "y.log"])
    row = locate_sessions(res.sessions, res.files).filter(pl.col("session_id") == "blk_9").row(0, named=True)
    assert row["source"].endswith("x.log") and (row["first_line"], row["last_line"]) == (1, 3)
    assert row["line_numbers"] == [1, 3, 4]  # global numbering is unchanged


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_cli_writes_every_format(tmp_path, use_bundle, suffix):
    write_log(tmp_path / "a.log", {"blk_1": "normal", "blk_2": "anomaly", "blk_3": "new"})
    out = tmp_path / f"scores{suffix}"
    result = CliRunner().invoke(app, ["score", "--model", "B", str(tmp_path / "a.log"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    df = {".csv": pl.read_csv, ".jsonl": pl.read_ndjson, ".parquet": pl.read_parquet}[suffix](out)
    assert df["session_id"].to_list() == ["blk_1", "blk_2", "blk_3"] and df["verdict"][1] == "anomaly"
    assert df["first_line"].to_list() == [1, 8, 15] and df["last_line"].to_list() == [7, 14, 22]
    assert "3 sessions" in result.output and "2 alerts" in result.output and "1 with events never seen" in result.output
    assert not list(tmp_path.glob(".scores*"))  # atomic: no temp file left


def test_cli_explain_jsonl_with_lines_and_only_alerts(tmp_path, use_bundle):
    where = write_log(tmp_path / "a.log", {"blk_1": "normal", "blk_2": "anomaly", "blk_3": "new"})
    out = tmp_path / "alerts.jsonl"
    args = ["score", "-m", "B", str(tmp_path / "a.log"), "--out", str(out), "--only-alerts", "--explain"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {r["session_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {"blk_2", "blk_3"}
    bad = rows["blk_2"]["explanation"]
    assert bad["weighing"][0]["event"] == "E20" and bad["weighing"][0]["flips"]
    assert "E20 count ≥ 1" in bad["decision_path"]["text"] or "E21 count = 0" in bad["decision_path"]["text"]
    assert "no E21 where the closest normal blocks have ×1" in bad["nearest_normal"]["text"]
    lines = bad["lines"]
    assert [x["line"] for x in lines] == where["blk_2"] and all("blk_2" in x["text"] for x in lines)
    assert [x["event"] for x in lines if x["weighing"]] == ["E20"] and "Unexpected error" in lines[-1]["text"]
    new = rows["blk_3"]["explanation"]
    assert any(d["event"] == "E2" and d["unknown"] for d in new["nearest_normal"]["differences"])
    shown = CliRunner().invoke(app, [*args, "--show-lines", "2"])
    assert shown.exit_code == 0, shown.output
    bad = json.loads(out.read_text().splitlines()[0])["explanation"]
    assert len(bad["lines"]) == 2 and bad["lines_omitted"] == 5 and bad["lines"][-1]["event"] == "E20"


def test_cli_pipe_gets_csv_and_labels_give_metrics(tmp_path, use_bundle):
    csv = tmp_path / "sessions.csv"
    rows = [("s1", "Normal", "normal"), ("s2", "Anomaly", "anomaly"), ("s3", "", "new"), ("s4", "Anomaly", "normal")]
    csv.write_text("BlockId,Label,EventSequence\n" + "\n".join(
        f"{s},{label},{' '.join(e for e, _ in life(k))}" for s, label, k in rows) + "\n")  # fmt: skip
    result = CliRunner().invoke(app, ["score", "--model", "B", str(csv), "--explain"])
    assert result.exit_code == 0, result.output
    body = result.stdout[result.stdout.index("session_id,") :]
    table = pl.read_csv(body.encode())
    assert table["session_id"].to_list() == ["s1", "s2", "s3", "s4"] and table["label"].to_list() == [0, 1, None, 1]
    assert table["explanation"].null_count() == 2  # only alerts are explained
    assert "3 labelled sessions: F1 0.6667  precision 1.0000  recall 0.5000" in result.output


def test_terminal_table_puts_alerts_first_when_cut(bundle):
    events = [[e for e, _ in life("anomaly" if i == 4 else "normal")] for i in range(5)]
    sessions = pl.DataFrame({"session_id": [f"s{i}" for i in range(5)], "events": events})
    table = score_table(bundle, sessions)
    console = Console(record=True, width=200)
    print_table(console, table, table.select(ALERT).to_series(), limit=2)
    text = console.export_text()
    assert "s4" in text and "anomaly" in text and "s0" in text and "s1" not in text
    assert "showing 2 of 5 rows (alerts first)" in text


def test_terminal_explanation_block_marks_the_weighing_lines(tmp_path, bundle):
    write_log(tmp_path / "a.log", {"blk_1": "normal", "blk_2": "anomaly"})
    res = score_inputs(bundle, [tmp_path / "a.log"], explain=True, show_lines=3)
    assert set(res.explanations) == {"blk_2"}
    console = Console(record=True, width=250)
    print_explanations(console, res.table, res.explanations)
    text = console.export_text()
    assert "blk_2 — anomaly, score 1.0000" in text and "a.log:8–14" in text
    assert "weighing events: E20 ×1: 0.000 without it (normal)" in text
    assert "▶ a.log:14 E20" in text and "Unexpected error trying to delete block blk_2" in text
    assert "… 4 more line(s) (--show-lines)" in text and "nearest normal: " in text


def test_bad_lines_are_counted_never_fatal(tmp_path, use_bundle):
    log = tmp_path / "messy.log"
    write_log(log, {"blk_1": "normal", "blk_2": "anomaly"}, extra=["garbage", "x" * (1 << 20)])  # a 1 MB line
    log.write_bytes(log.read_bytes() + b"081109 100101 7 INFO dfs.X: \xff\xfe not utf-8 blk_2\n")
    result = CliRunner().invoke(app, ["score", "-m", "B", str(log), "--out", str(tmp_path / "s.csv"), "--explain"])
    assert result.exit_code == 0, result.output
    assert "17 lines, 3 rejected" in result.output and "too_long" in result.output and "non_utf8" in result.output
    assert pl.read_csv(tmp_path / "s.csv")["verdict"].to_list() == ["normal", "anomaly"]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", ["empty", "missing", "empty_csv", "bad_suffix", "mixed", "no_sessions"])
def test_bad_input_is_one_clear_line(tmp_path, use_bundle, case):
    log = tmp_path / "a.log"
    write_log(log, {"blk_1": "normal"})
    inputs, out, expected = {
        "empty": ([tmp_path / "empty.log"], "s.csv", "no block sessions found (0 lines, 0 rejected)"),
        "missing": ([tmp_path / "nope.log"], "s.csv", "file not found"),
        "empty_csv": ([tmp_path / "empty.csv"], "s.csv", "file is empty"),
        "bad_suffix": ([log], "s.txt", "must end in .csv, .jsonl, .parquet"),
        "mixed": ([log, tmp_path / "x.csv"], "s.csv", "not both"),
        "no_sessions": ([tmp_path / "junk.log"], "s.csv", "no block sessions found (2 lines, 2 rejected"),
    }[case]  # fmt: skip
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "x.csv").write_text("session_id,events\ns,E5\n")
    (tmp_path / "junk.log").write_bytes(b"\x00\x01binary\nnot a log line\n")
    result = CliRunner().invoke(app, ["score", "-m", "B", *map(str, inputs), "--out", str(tmp_path / out)])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
