"""A corpus of bad inputs and arguments, one per row, across every verb: each must end in exit code 2 with one
error line that names the problem, never a traceback. Nothing here trains, except one tiny run (seconds) whose
directory the damaged-run cases take apart: bad arguments must fail before any work."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from logsieve.cli import app
from logsieve.table import write_sessions

runner = CliRunner()
TINY = ["--set", "train.epochs=1", "--set", "data.max_len=64", "--set", "model.hidden_size=4",
        "--set", "model.embed_dim=2", "--no-progress"]  # fmt: skip
UNWRITABLE = "/proc/logsieve-no-such-dir/out"  # procfs refuses every mkdir, even for root


@pytest.fixture(scope="module")
def files(tmp_path_factory, simulated) -> dict[str, Path]:
    """Tiny good inputs and one of each kind of bad file, by name."""
    d = tmp_path_factory.mktemp("inputs")
    good = simulated.head(300)
    f = {"good": write_sessions(good, d / "sessions.csv"), "parquet": write_sessions(good, d / "sessions.parquet")}

    def text(name: str, content: str | bytes) -> None:  # keyed by the name with "_" for "." (a format field)
        f[name.replace(".", "_")] = d / name
        (d / name).write_bytes(content if isinstance(content, bytes) else content.encode())

    text("empty.csv", b"")
    text("latin1.csv", "session,label,events\nb1,0,E5 E22\nb2,1,E5 caf\xe9\n".encode("latin-1"))
    text("nocols.csv", "id,label\nb1,0\nb2,1\n")
    text("badlabel.csv", "session,label,events\nb1,0,E5\nb2,maybe,E7\n")
    text("dupid.csv", "session,label,events\nb1,0,E5\nb2,1,E7\nb1,0,E22\n")
    text("badevents.csv", "session,label,events\nb1,0,E5 @@\n")
    text("unlabelled.csv", "session,label,events\nb1,,E5\nb2,1,E7\nb3,0,E5\n")
    text("garbage.parquet", b"PAR1 this is not parquet")
    text("corrupt.csv.gz", b"\x1f\x8b\x08garbage")
    text("labels_bad.csv", "BlockId,Label\nb1,Weird\n")
    text("space.toml", "[params\nnot toml")
    text("space_bad.toml", '[params.lr]\ntype = "banana"\n')
    text("search.json", "{not json")
    text("miner.json", '{"version": 99}')
    text("binary.log", b"\x00\x01\x02\xff\xfe" * 50 + b"\n")
    text("quote.csv", 'session,label,events\nb1,0,"E5\n')
    f["oneclass"] = write_sessions(simulated.filter(pl.col("label") == 0).head(50), d / "oneclass.csv")
    f["notimes"] = f["good"]  # a CSV keeps no start times
    f["emptydir"] = d / "emptydir"
    f["emptydir"].mkdir()
    f["file"] = f["good"]
    gz = d / "sessions.csv.gz"
    gz.write_bytes(gzip.compress(f["good"].read_bytes()))
    f["gz"] = gz
    return f


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, files) -> Path:
    """One real (tiny) run directory; the damaged-run cases copy and break it."""
    run = tmp_path_factory.mktemp("runs") / "run"
    res = runner.invoke(app, ["train", "--data", str(files["good"]), "--out", str(run), *TINY])
    assert res.exit_code == 0, res.output
    return run


def assert_one_error_line(args: list[str], needle: str) -> None:
    res = runner.invoke(app, [str(a) for a in args])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2, (args, res.output, res.exception)
    assert isinstance(res.exception, SystemExit)  # a clean exit, not a crash
    assert "Traceback" not in res.output
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert needle in lines[0], (needle, lines[0])


# --- inputs and arguments that need no trained model ------------------------------------------------

BAD = [
    # (id, args with {placeholders}, what the line must say)
    ("data-missing", ["train", "-d", "{tmp}/nope.csv", "-o", "{tmp}/o"], "file not found"),
    ("data-empty", ["train", "-d", "{empty_csv}", "-o", "{tmp}/o"], "file is empty"),
    ("data-not-utf8", ["train", "-d", "{latin1_csv}", "-o", "{tmp}/o"], "latin1.csv"),
    ("data-wrong-columns", ["train", "-d", "{nocols_csv}", "-o", "{tmp}/o"], "no events column"),
    ("data-bad-label", ["train", "-d", "{badlabel_csv}", "-o", "{tmp}/o"], "unknown label value 'maybe'"),
    ("data-repeated-id", ["train", "-d", "{dupid_csv}", "-o", "{tmp}/o"], "session id 'b1' repeats (rows 2, 4)"),
    ("data-bad-events", ["train", "-d", "{badevents_csv}", "-o", "{tmp}/o"], "unparsable event list"),
    ("data-unlabelled", ["train", "-d", "{unlabelled_csv}", "-o", "{tmp}/o"], "have no label"),
    ("data-one-class", ["train", "-d", "{oneclass}", "-o", "{tmp}/o"], "only one class"),
    ("data-garbage-parquet", ["train", "-d", "{garbage_parquet}", "-o", "{tmp}/o"], "not a readable Parquet file"),
    ("data-corrupt-gzip", ["train", "-d", "{corrupt_csv_gz}", "-o", "{tmp}/o"], "cannot read"),
    ("data-open-quote", ["train", "-d", "{quote_csv}", "-o", "{tmp}/o"], "quote.csv"),
    ("data-empty-dir", ["train", "-d", "{emptydir}", "-o", "{tmp}/o"], "holds no log files"),
    ("labels-missing", ["train", "-d", "{good}", "--labels", "{tmp}/nope.csv", "-o", "{tmp}/o"], "file not found"),
    (
        "labels-bad-value",
        ["train", "-d", "{good}", "--labels", "{labels_bad_csv}", "-o", "{tmp}/o"],
        "unknown label value 'Weird'",
    ),
    ("preset-unknown", ["train", "-d", "{good}", "-o", "{tmp}/o", "-p", "nope"], "unknown preset 'nope'"),
    ("set-no-equals", ["train", "-d", "{good}", "-o", "{tmp}/o", "--set", "train.lr"], "--set expects"),
    (
        "set-bad-value",
        ["train", "-d", "{good}", "-o", "{tmp}/o", "--set", "model.cell=transformer"],
        "model.cell: Input should be",
    ),
    ("set-bad-type", ["train", "-d", "{good}", "-o", "{tmp}/o", "--set", "train.lr=fast"], "train.lr"),
    ("set-unknown-key", ["train", "-d", "{good}", "-o", "{tmp}/o", "--set", "model.colour=3"], "model.colour"),
    ("set-seed", ["train", "-d", "{good}", "-o", "{tmp}/o", "--set", "seed=3"], "--set cannot change seed"),
    (
        "set-conflict",
        ["train", "-d", "{good}", "-o", "{tmp}/o", "--set", "train=1", "--set", "train.lr=1"],
        "conflicts with an earlier --set",
    ),
    (
        "set-fractions",
        ["train", "-d", "{good}", "-o", "{tmp}/o", "--set", "data.val_frac=0.5", "--set", "data.test_frac=0.5"],
        "must be < 1",
    ),
    (
        "set-chronological",
        ["train", "-d", "{notimes}", "-o", "{tmp}/o", "--set", "data.split=chronological"],
        "needs a start_time column",
    ),
    (
        "search-result-missing",
        ["train", "-d", "{good}", "-o", "{tmp}/o", "-p", "improved-grid", "--search-result", "{tmp}/nope.json"],
        "cannot read search result",
    ),
    (
        "search-result-bad-json",
        ["train", "-d", "{good}", "-o", "{tmp}/o", "-p", "improved-grid", "--search-result", "{search_json}"],
        "cannot read search result",
    ),
    ("train-out-proc", ["train", "-d", "{tmp}/nope.csv", "-o", UNWRITABLE], "cannot create output folder"),
    ("train-out-is-file", ["train", "-d", "{tmp}/nope.csv", "-o", "{file}"], "exists and is not a directory"),
    ("study-presets-empty", ["study", "-d", "{good}", "-o", "{tmp}/s", "--presets", ""], "chose no preset"),
    ("study-presets-commas", ["study", "-d", "{good}", "-o", "{tmp}/s", "--presets", " , "], "chose no preset"),
    (
        "study-presets-unknown",
        ["study", "-d", "{good}", "-o", "{tmp}/s", "--presets", "baseline,nope"],
        "unknown preset(s) 'nope'",
    ),
    ("study-seeds-zero", ["study", "-d", "{good}", "-o", "{tmp}/s", "--seeds", "0"], "--seeds must be at least 1"),
    ("study-out-proc", ["study", "-d", "{tmp}/nope.csv", "-o", UNWRITABLE], "cannot create output folder"),
    ("search-space-missing", ["search", "-d", "{good}", "-o", "{tmp}/q", "--space", "{tmp}/nope.toml"], "nope.toml"),
    ("search-space-bad-toml", ["search", "-d", "{good}", "-o", "{tmp}/q", "--space", "{space_toml}"], "space.toml"),
    (
        "search-space-bad-type",
        ["search", "-d", "{good}", "-o", "{tmp}/q", "--space", "{space_bad_toml}"],
        "lr range needs low and high",
    ),
    ("search-space-unknown", ["search", "-d", "{good}", "-o", "{tmp}/q", "--space", "galaxy"], "galaxy"),
    ("search-pruner", ["search", "-d", "{good}", "-o", "{tmp}/q", "--pruner", "sometimes"], "--pruner must be"),
    ("search-out-proc", ["search", "-d", "{tmp}/nope.csv", "-o", UNWRITABLE], "cannot create output folder"),
    ("explore-split", ["explore", "-d", "{good}", "-o", "{tmp}/e", "--split", "sideways"], "sideways"),
    (
        "explore-chronological",
        ["explore", "-d", "{notimes}", "-o", "{tmp}/e", "--split", "chronological"],
        "start_time",
    ),
    ("explore-out-is-file", ["explore", "-d", "{tmp}/nope.csv", "-o", "{file}"], "exists and is not a directory"),
    ("explore-out-proc", ["explore", "-d", "{tmp}/nope.csv", "-o", UNWRITABLE], "cannot create output folder"),
    ("explore-empty", ["explore", "-d", "{empty_csv}", "-o", "{tmp}/e"], "file is empty"),
    ("simulate-negative-blocks", ["simulate", "-o", "{tmp}/sim", "--blocks", "-5"], "number of blocks"),
    ("simulate-zero-blocks", ["simulate", "-o", "{tmp}/sim", "--blocks", "0"], "number of blocks"),
    ("simulate-rate", ["simulate", "-o", "{tmp}/sim", "--anomaly-rate", "1.5"], "anomaly rate"),
    ("simulate-seed", ["simulate", "-o", "{tmp}/sim", "--seed", "-1"], "seed"),
    ("simulate-out-proc", ["simulate", "-o", UNWRITABLE, "--blocks", "-5"], "cannot create output folder"),
    ("simulate-out-is-file", ["simulate", "-o", "{file}", "--blocks", "0"], "exists and is not a directory"),
    ("parse-missing", ["parse", "{tmp}/nope.log", "-o", "{tmp}/p.parquet"], "file not found"),
    ("parse-empty-dir", ["parse", "{emptydir}", "-o", "{tmp}/p.parquet"], "holds no log files"),
    ("parse-out-proc", ["parse", "{tmp}/nope.log", "-o", UNWRITABLE + ".parquet"], "cannot create output folder"),
    ("parse-out-is-dir", ["parse", "{binary_log}", "-o", "{emptydir}"], "is a directory"),
    (
        "parse-rejects-proc",
        ["parse", "{tmp}/nope.log", "-o", "{tmp}/p.parquet", "--rejects", UNWRITABLE],
        "cannot create output folder",
    ),
    (
        "parse-miner-missing",
        ["parse", "{binary_log}", "-o", "{tmp}/p.parquet", "--templates", "{tmp}/m.json"],
        "m.json",
    ),
    (
        "parse-miner-bad",
        ["parse", "{binary_log}", "-o", "{tmp}/p.parquet", "--templates", "{miner_json}"],
        "not a template miner state",
    ),
    ("parse-only-garbage", ["parse", "{binary_log}", "-o", "{tmp}/p.parquet"], "binary.log"),
    ("demo-presets-empty", ["demo", "-o", "{tmp}/demo", "--presets", ""], "chose no preset"),
    ("demo-presets-unknown", ["demo", "-o", "{tmp}/demo", "--presets", "nope"], "unknown preset(s) 'nope'"),
    ("demo-out-proc", ["demo", "-o", UNWRITABLE, "--presets", ""], "cannot create output folder"),
    ("demo-blocks", ["demo", "-o", "{tmp}/demo", "--blocks", "-3", "--no-progress"], "number of blocks"),
    ("fetch-unknown", ["fetch", "hdfs-v9", "--dest", "{tmp}/f"], "unknown dataset 'hdfs-v9'"),
    ("fetch-bad-sha", ["fetch", "hdfs-v1", "--dest", "{tmp}/f", "--sha256", "abc"], "64 hex digits"),
    ("fetch-bad-url", ["fetch", "hdfs-v1", "--dest", "{tmp}/f", "--url", "ftp://x/y.zip"], "http(s) URL"),
    ("fetch-dest-proc", ["fetch", "hdfs-v1", "--dest", UNWRITABLE], "cannot create --dest folder"),
]


# The "-proc" and "-out-is-" rows pair the bad output with another fault (missing data, bad blocks): naming the output
# proves it is checked first, before any data is read or work is done.


def fill(args: list[str], files: dict[str, Path], tmp: Path) -> list[str]:
    return [a.format(tmp=tmp, **{k: str(v) for k, v in files.items()}) for a in args]


@pytest.mark.parametrize(("args", "needle"), [pytest.param(a, n, id=i) for i, a, n in BAD])
def test_bad_input_is_one_error_line(args, needle, files, tmp_path):
    assert_one_error_line(fill(args, files, tmp_path), needle)
    assert not (tmp_path / "o").exists() and not (tmp_path / "s").exists()  # failed before any output


# --- damaged run directories ------------------------------------------------------------------------


def _edit_json(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        data = json.loads((run / name).read_text())
        (run / name).write_text(json.dumps(change(data)))

    return damage


def _truncate(name: str, keep: int) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: keep if keep >= 0 else len(data) + keep])

    return damage


def _drop_key(key: str, section: str | None = None) -> Callable[[dict], dict]:
    def change(d: dict) -> dict:
        (d[section] if section else d).pop(key)
        return d

    return change


def _set(path: tuple[str, ...], value: object) -> Callable[[dict], dict]:
    def change(d: dict) -> dict:
        node = d
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
        return d

    return change


DAMAGE = [
    # (id, damage, --split, what the line must say)
    ("no-model-pt", lambda run: (run / "model.pt").unlink(), "all", "missing model.pt"),
    ("no-detector-json", lambda run: (run / "detector.json").unlink(), "all", "missing detector.json"),
    ("detector-bad-json", lambda run: (run / "detector.json").write_text("{oops"), "all", "not valid JSON"),
    ("detector-not-utf8", lambda run: (run / "detector.json").write_bytes(b"\xff\xfe{}"), "all", "cannot read"),
    ("detector-a-list", lambda run: (run / "detector.json").write_text("[1, 2]"), "all", "expected a JSON object"),
    ("detector-no-config", _edit_json("detector.json", _drop_key("config")), "all", "no 'config' object"),
    ("detector-bad-config", _edit_json("detector.json", _set(("config", "model", "cell"), "cnn")), "all", "model.cell"),
    ("detector-no-vocabulary", _edit_json("detector.json", _drop_key("vocabulary")), "all", "vocabulary"),
    (
        "detector-bad-vocabulary",
        _edit_json("detector.json", _set(("vocabulary", "events"), [1, 2])),
        "all",
        "vocabulary",
    ),
    ("detector-no-threshold", _edit_json("detector.json", _drop_key("threshold")), "all", "threshold"),
    ("detector-bad-threshold", _edit_json("detector.json", _set(("threshold",), "high")), "all", "threshold"),
    (
        "detector-config-mismatch",
        _edit_json("detector.json", _set(("config", "model", "hidden_size"), 9)),
        "all",
        "does not fit the model detector.json describes (Error(s) in loading state_dict",
    ),
    ("model-pt-truncated", _truncate("model.pt", -200), "all", "model.pt: damaged (not a saved state dict"),
    ("model-pt-empty", _truncate("model.pt", 0), "all", "model.pt: damaged"),
    ("model-pt-garbage", lambda run: (run / "model.pt").write_bytes(b"not a torch file"), "all", "model.pt: damaged"),
    ("config-json-bad", lambda run: (run / "config.json").write_text("{"), "test", "config.json: run config"),
    ("config-json-missing", lambda run: (run / "config.json").unlink(), "test", "config.json: run config not found"),
    ("config-json-no-config", _edit_json("config.json", _drop_key("config")), "test", "no 'config' object"),
    ("config-json-no-sha", _edit_json("config.json", _drop_key("sha256", "data")), "test", "no data.sha256"),
]


@pytest.mark.parametrize(("damage", "split", "needle"), [pytest.param(d, s, n, id=i) for i, d, s, n in DAMAGE])
def test_damaged_run_directory_is_one_error_line(damage, split, needle, run_dir, files, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    damage(run)
    assert_one_error_line(["evaluate", "--model", run, "--data", files["good"], "--split", split], needle)


def test_the_undamaged_run_evaluates(run_dir, files, tmp_path):
    """The control: the damage, not the fixture, is what the cases above refuse."""
    res = runner.invoke(app, ["evaluate", "--model", str(run_dir), "--data", str(files["good"]), "--split", "test",
                              "--out", str(tmp_path / "m.json")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m.json").read_text())["split"] == "test"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["--model", "{tmp}/none"], "not a logsieve run directory", id="model-missing"),
        pytest.param(["--model", "{good}"], "not a logsieve run directory", id="model-is-a-file"),
        pytest.param(["--split", "middle"], "--split must be 'all' or 'test'", id="split-unknown"),
        pytest.param(["--split", "test", "--data", "{gz}"], "not the data", id="split-test-other-data"),
        pytest.param(
            ["--out", UNWRITABLE + ".json", "--model", "{tmp}/none"], "cannot create output folder", id="out-proc"
        ),
        pytest.param(["--out", "{emptydir}"], "is a directory", id="out-is-dir"),
        pytest.param(["--data", "{dupid_csv}"], "session id 'b1' repeats", id="data-repeated-id"),
    ],
)
def test_bad_evaluate_arguments(args, needle, run_dir, files, tmp_path):
    base = {"--model": str(run_dir), "--data": str(files["good"])}
    given = fill(args, files, tmp_path)
    for flag, value in zip(given[::2], given[1::2], strict=True):
        base[flag] = value
    assert_one_error_line(["evaluate", *(x for kv in base.items() for x in kv)], needle)


# --- usage errors (click) and the real console entry point ------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["simulate", "-o", "x", "--blocks", "abc"], ["train", "--data", "x"], ["evaluate"], ["nonsense-verb"]],
    ids=["not-an-int", "missing-out", "missing-model", "unknown-verb"],
)
def test_usage_errors_exit_2_without_traceback(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "Error" in res.output or "error" in res.output


def test_console_entry_point_prints_one_line_and_exits_2(tmp_path):
    """Through a real process and ``main()`` (not CliRunner): stderr is one line, stdout is empty."""
    proc = subprocess.run(
        [sys.executable, "-c", "from logsieve.cli import main; main()", "simulate", "--out", UNWRITABLE],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: cannot create output folder /proc/logsieve-no-such-dir: No such file or directory"
    ]
