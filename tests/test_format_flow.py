"""A non-HDFS log format flows through everything: raw lines -> train/study (--data RAW --format ...) -> run
directory (parse.json) -> export (the bundle carries format, session rule, labels and miner) -> score/serve/watch
raw lines of that format with nothing but the bundle, giving the scores of the parsed session file. HDFS data,
runs and bundles without a spec keep meaning HDFS. Core tests use a generated log in a custom FILE format;
the Loghub samples (BGL, OpenStack) are used when present."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import loghub_sample as loghub
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from logsieve.cli import app
from logsieve.config import DataConfig
from logsieve.data.load import load_parsed, load_with_info
from logsieve.data.splits import Splits
from logsieve.errors import LogsieveError
from logsieve.parsing.options import ParseOptions
from logsieve.parsing.spec import hdfs_spec, read_parquet_spec, read_spec, spec_metadata
from logsieve.serving.app import create_app
from logsieve.serving.bundle import export_bundle, load_bundle
from logsieve.serving.scoring import bundle_spec, score_inputs
from logsieve.serving.watch import Watcher, make_options
from logsieve.table import write_sessions
from logsieve.training.study import baseline_run

JOBS_FORMAT = """\
name = "jobs"
pattern = '<Tag> <Date> <Time> <Node> <Component>: <Content>'
time = { fields = ["Date", "Time"], format = "%Y-%m-%d %H:%M:%S" }
masks = [{ pattern = 'attempt_\\d+_\\d+' }, { pattern = '\\d+' }]
label = { field = "Tag" }
"""
KEY = r"attempt_\d+_\d+"


def jobs_log(folder: Path, attempts: int = 240, seed: int = 1) -> tuple[Path, Path]:
    """A Hadoop-style log in a format of our own: task attempts whose lines interleave in time; a failing attempt
    loses its connection (Tag FAIL, a per-line label) and retries; heartbeats name no attempt."""
    rng = random.Random(seed)
    start, rows = datetime(2024, 3, 1, 10, 0, 0), []
    for a in range(attempts):
        t, job, node = start + timedelta(seconds=2 * a), f"attempt_{a // 20:04d}_{a:05d}", rng.randint(1, 9)
        life = ["started on host h{n}", "reading split {n} of 64", "wrote {n} bytes", "finished in {n} ms"]
        if rng.random() < 0.15:
            life[2:2] = ["FAIL lost connection to host h{n}", "retrying after {n} ms"]
        for text in life:
            tag, text = ("FAIL", text[5:]) if text.startswith("FAIL ") else ("-", text)
            rows.append((t, f"{tag} {{ts}} node-{node} mapred.Task: {job} {text.format(n=rng.randint(1, 9999))}"))
            t += timedelta(seconds=rng.randint(1, 4))
        if a % 7 == 0:
            rows.append((t, f"- {{ts}} node-{node} mapred.Heartbeat: heartbeat from node-{node} ok"))
    rows.sort(key=lambda r: r[0])
    log, fmt = folder / "jobs.log", folder / "jobs.toml"
    log.write_text("".join(text.format(ts=t.strftime("%Y-%m-%d %H:%M:%S")) + "\n" for t, text in rows))
    fmt.write_text(JOBS_FORMAT)
    return log, fmt


def cli(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def tree_bundle(folder: Path, log: Path, options: ParseOptions | None) -> Path:
    """--data RAW with these options -> a decision-tree run directory (fit on everything: only the flow is
    under test here) -> its bundle."""
    sessions, info = load_with_info(log, raw=options)
    run = folder / "run"
    baseline_run("decision-tree", 0, Splits(sessions, sessions, sessions), run, info, DataConfig())
    return export_bundle(run, folder / "bundle")


def by_id(table: pl.DataFrame) -> dict[str, float]:
    return dict(zip(table["session_id"].to_list(), table["score"].to_list(), strict=True))


# --- the generated log: core tests, no shared data --------------------------------------------------------------


def test_custom_file_format_round_trip_through_cli_train_export_and_raw_score(tmp_path: Path) -> None:
    log, fmt = jobs_log(tmp_path)
    parquet, run, bundle = tmp_path / "s.parquet", tmp_path / "run", tmp_path / "bundle"
    r = cli("parse", log, "--format", fmt, "--session-key", KEY, "--out", parquet)
    assert r.exit_code == 0, r.output
    spec = read_parquet_spec(parquet)
    assert spec is not None and spec.format.name == "jobs" and spec.rule.key == KEY and spec.miner is not None
    r = cli("train", "--data", log, "--format", fmt, "--session-key", KEY, "--preset", "baseline",
            "--set", "train.epochs=1", "--out", run, "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    recorded = read_spec(run)
    assert recorded is not None and recorded == spec  # mined on every line of --data, as parse did
    assert json.loads((run / "config.json").read_text())["data"]["parse"].startswith("jobs, --session-key")
    r = cli("export", "--model", run, "--out", bundle)  # no --templates: the run knows
    assert r.exit_code == 0, r.output
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and manifest["parse"]["format"]["pattern"] == spec.format.pattern
    assert manifest["parse"]["miner"] is None and manifest["templates"]["source"] == "miner"
    fmt.unlink()  # the custom FILE format travels inside the bundle
    r = cli("score", log, "--model", bundle, "--out", tmp_path / "raw.csv")
    assert r.exit_code == 0, r.output
    assert "labelled sessions: F1" in r.output  # the format's per-line label field labels the sessions
    r = cli("score", parquet, "--model", bundle, "--out", tmp_path / "parsed.csv")
    assert r.exit_code == 0, r.output
    raw, parsed = pl.read_csv(tmp_path / "raw.csv"), pl.read_csv(tmp_path / "parsed.csv")
    assert raw.height == parsed.height == spec_sessions(parquet) > 200
    assert raw.select("session_id", "score", "label").equals(parsed.select("session_id", "score", "label"))
    assert raw["source"].is_not_null().all() and (raw["first_line"] <= raw["last_line"]).all()
    r = cli("verify", bundle)
    assert r.exit_code == 0 and f"raw lines: jobs, --session-key {KEY}" in r.output


def spec_sessions(parquet: Path) -> int:
    return pl.read_parquet(parquet).height


def test_study_explore_and_search_take_raw_logs_of_any_format(tmp_path: Path) -> None:
    log, fmt = jobs_log(tmp_path, attempts=160)
    raw = ["--data", log, "--format", fmt, "--session-key", KEY]
    r = cli("study", *raw, "--presets", "baseline", "--no-baselines", "--set", "train.epochs=1", "--jobs", "1",
            "--no-progress", "--export", "best", "--out", tmp_path / "study")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert read_spec(tmp_path / "study" / "runs" / "baseline" / "seed-0") is not None
    assert load_bundle(tmp_path / "study" / "bundle").parse == read_spec(tmp_path / "study" / "runs" / "baseline"
                                                                         / "seed-0")  # fmt: skip
    r = cli("explore", *raw, "--out", tmp_path / "explore")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "explore" / "explore.json").read_text())["sessions"] == 160
    r = cli("search", *raw, "--space", "tiny", "--epochs", "1", "--jobs", "1", "--out", tmp_path / "search")
    assert r.exit_code == 0, r.output
    command = json.loads((tmp_path / "search" / "search_result.json").read_text())["command"]
    assert f"--format {fmt} --session-key" in command  # the recorded command parses the data the same way


@pytest.mark.parametrize(
    "options",
    [
        ParseOptions(session_key=KEY),  # Hadoop-style ids in the line: sessions close by --idle (here: at EOF)
        ParseOptions(window="20s", step="10s"),  # sliding time windows: closed once log time passes their end
        ParseOptions(lines=12, step="5", label_regex="retrying"),  # runs of lines: closed when full
    ],
    ids=["key", "time-windows", "line-windows"],
)
def test_score_serve_and_watch_raw_lines_agree_with_the_parsed_sessions(tmp_path: Path, options: ParseOptions) -> None:
    log, fmt = jobs_log(tmp_path, attempts=120)
    options = options.model_copy(update={"format": str(fmt)})
    path = tree_bundle(tmp_path, log, options)
    bundle = load_bundle(path)
    assert bundle.parse is not None and bundle.parse.rule == options.rule()
    sessions, spec = load_parsed(log, raw=options)
    parsed = tmp_path / "parsed.parquet"
    write_sessions(sessions, parsed, spec_metadata(spec))
    expected = by_id(score_inputs(bundle, [parsed]).table)
    raw = score_inputs(bundle, [log])
    assert by_id(raw.table) == expected and raw.metrics is not None  # per-line labels -> metrics

    body = TestClient(create_app(bundle)).post("/v1/score", json={"lines": log.read_text().splitlines()}).json()
    served = {s["id"]: s["score"] for s in body["sessions"]}
    assert served == expected
    unkeyed = sum("Heartbeat" in line for line in log.read_text().splitlines()) if options.session_key else 0
    assert body["lines"]["unblocked"] == unkeyed

    out = tmp_path / "alerts.jsonl"
    options_w = make_options(once=True, all_sessions=True, end_grace=0.0)
    summary = Watcher(bundle, [str(log)], options_w, out=out, say=lambda _: None).run()
    watched = pl.read_ndjson(out)
    assert by_id(watched) == expected and summary.scored == len(expected)
    closed = watched["closed"].value_counts()
    if options.session_key is None:  # windows close while the log is read, not at its end
        assert dict(closed.iter_rows())["end"] >= len(expected) - 4


def test_watch_closes_time_windows_as_log_time_passes_their_end_plus_the_grace(tmp_path: Path) -> None:
    log, fmt = jobs_log(tmp_path, attempts=120)
    bundle = load_bundle(tree_bundle(tmp_path, log, ParseOptions(format=str(fmt), window="30s")))
    lines = log.read_bytes().splitlines(keepends=True)
    watcher = Watcher(bundle, [str(tmp_path / "live.log")], make_options(all_sessions=True, end_grace=15.0),
                      out=tmp_path / "w.jsonl", say=lambda _: None)  # fmt: skip
    try:
        with open(tmp_path / "live.log", "ab") as f:
            for line in lines:
                f.write(line)
        watcher.drain()
        first = pl.read_ndjson(tmp_path / "w.jsonl")
        assert first.height >= 4 and set(first["closed"]) == {"end"}  # closed while the log was read
        newest = datetime.strptime(lines[-1].split()[1].decode() + " " + lines[-1].split()[2].decode(),
                                   "%Y-%m-%d %H:%M:%S")  # fmt: skip
        ends = first["start_time"].str.to_datetime() + timedelta(seconds=30)
        assert (ends + timedelta(seconds=15) <= newest).all()  # nothing closed before its end + grace
        assert watcher.sessions.height >= 1  # the last window(s) are still open: log time has not passed them
    finally:
        watcher.close()


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    log, fmt = jobs_log(tmp_path, attempts=60)
    options = ParseOptions(format=str(fmt), session_key=KEY)
    bundle = tree_bundle(tmp_path, log, options)
    from logsieve.simulator.simulate import simulate_logs

    hdfs = simulate_logs(30, 0.1, seed=2, out_dir=tmp_path / "hdfs").log
    app_log = tmp_path / "app.log"
    app_log.write_text("2024-01-01 00:00:00 [INFO] job j1 started\n" * 9 + "- 2024-01-01 00:00:01 n c: x\n")
    for other, message in (
        (app_log, "9 of 10 lines (90 %) do not fit format jobs: a different format?"),
        (hdfs, "no line fits format jobs (539 lines, 539 rejected (539 bad_timestamp))"),
    ):
        r = cli("score", other, "--model", bundle)  # the bundle's format is not the scored log's
        assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    parquet = tmp_path / "s.parquet"
    assert cli("parse", log, "--format", fmt, "--session-key", KEY, "--out", parquet).exit_code == 0
    r = cli("train", "--data", parquet, "--format", "BGL", "--out", tmp_path / "r2")  # options for a session file
    assert r.exit_code == 2 and "is a session file: --format apply to raw logs" in r.output
    r = cli("export", "--model", tmp_path / "run", "--out", tmp_path / "b2", "--templates", "hdfs")
    assert r.exit_code == 2 and "drop --templates" in r.output
    other = tmp_path / "other.parquet"  # mined on other lines: its M-ids mean other things
    head = tmp_path / "head.log"
    head.write_text("".join(log.read_text().splitlines(keepends=True)[100:]))
    assert cli("parse", head, "--format", fmt, "--session-key", KEY, "--out", other).exit_code == 0
    r = cli("score", other, "--model", bundle)
    assert r.exit_code == 2 and "parsed with other templates" in r.output
    damaged = tmp_path / "damaged.parquet"
    pl.read_parquet(parquet).write_parquet(damaged, metadata={"logsieve.parse": "{not json"})
    r = cli("explore", "--data", damaged, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "parse spec" in r.output and "Traceback" not in r.output
    with pytest.raises(LogsieveError, match="no session rule"):
        load_with_info(log, raw=ParseOptions(format=str(fmt)))


# --- HDFS keeps meaning HDFS ----------------------------------------------------------------------------------


def test_spec_less_parquet_and_old_hdfs_bundles_are_the_hdfs_spec(tmp_path: Path) -> None:
    from logsieve.simulator.simulate import simulate_logs

    sim = simulate_logs(200, 0.1, seed=5, out_dir=tmp_path)
    parquet = tmp_path / "s.parquet"
    assert cli("parse", sim.log, "--labels", sim.labels, "--out", parquet).exit_code == 0
    assert read_parquet_spec(parquet) is None  # the default spec is recorded nowhere
    sessions, info = load_with_info(parquet)
    assert info.parse is None and "parse" not in info.record()
    baseline_run("decision-tree", 0, Splits(sessions, sessions, sessions), tmp_path / "run", info, DataConfig())
    assert read_spec(tmp_path / "run") is None
    path = export_bundle(tmp_path / "run", tmp_path / "bundle")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and "parse" not in manifest  # readable by logsieve before parse specs
    bundle = load_bundle(path)  # what every bundle before parse specs looks like
    assert bundle.parse is None and bundle_spec(bundle) == hdfs_spec()
    raw = score_inputs(bundle, [sim.log], sim.labels)
    assert by_id(raw.table) == by_id(score_inputs(bundle, [parquet]).table) and raw.metrics is not None
    assert load_parsed(sim.log, raw=ParseOptions(format="hdfs", session_key=r"blk_-?[0-9]+"))[1] is None
    _, windows = load_parsed(sim.log, raw=ParseOptions(format="HDFS", window="60s"))  # HDFS, but not blk_ sessions
    assert windows is not None and windows.templates == "hdfs" and not windows.hdfs_fast


# --- the Loghub samples (skipped without them) --------------------------------------------------------------------


def test_bgl_raw_train_export_score_raw_equals_the_parsed_file(tmp_path: Path) -> None:
    raw = loghub("BGL")
    parquet, run, bundle = tmp_path / "bgl.parquet", tmp_path / "run", tmp_path / "bundle"
    r = cli("train", "--data", raw, "--format", "bgl", "--window", "60s", "--preset", "baseline",
            "--set", "train.epochs=2", "--out", run, "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert cli("export", "--model", run, "--out", bundle).exit_code == 0
    assert cli("parse", raw, "--format", "BGL", "--window", "60s", "--out", parquet).exit_code == 0
    r = cli("score", raw, "--model", bundle, "--out", tmp_path / "raw.csv")
    assert r.exit_code == 0 and "1,380 labelled sessions" in r.output, r.output
    assert cli("score", parquet, "--model", bundle, "--out", tmp_path / "parsed.csv").exit_code == 0
    a, b = pl.read_csv(tmp_path / "raw.csv"), pl.read_csv(tmp_path / "parsed.csv")
    assert a.height == 1380 and a.select("session_id", "score").equals(b.select("session_id", "score"))


def test_openstack_request_sessions_flow_with_a_key_rule(tmp_path: Path) -> None:
    raw = loghub("OpenStack")
    options = ParseOptions(format="OpenStack", session_key=r"req-([0-9a-f-]{36})", label_regex='"(POST|DELETE) ')
    bundle = load_bundle(tree_bundle(tmp_path, raw, options))
    sessions, spec = load_parsed(raw, raw=options)
    parsed = tmp_path / "os.parquet"
    write_sessions(sessions, parsed, spec_metadata(spec))
    scored = score_inputs(bundle, [raw])
    assert scored.table.height == 938 and scored.stats is not None and scored.stats.unblocked == 155
    assert by_id(scored.table) == by_id(score_inputs(bundle, [parsed]).table)
    assert scored.metrics is not None and scored.metrics["n"] == 938
