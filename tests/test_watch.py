"""``logsieve watch``: following a growing log gives the verdicts of scoring the whole log, through rotation,
truncation, a crash and a restart; sessions close on end events and idle time; memory stays bounded."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from logsieve.cli import app
from logsieve.errors import LogsieveError
from logsieve.models.baselines import CountBaseline
from logsieve.parsing.pipeline import parse_logs_report
from logsieve.serving.bundle import Bundle
from logsieve.serving.checkpoint import read_state, write_state, written_since
from logsieve.serving.open_sessions import in_time_order, packed_codes
from logsieve.serving.scoring import score_table
from logsieve.serving.watch import Watcher, WatchOptions, parse_duration
from logsieve.simulator.simulate import simulate_logs, simulate_sessions

REPO = Path(__file__).resolve().parents[1]
START = datetime(2008, 11, 9, 20, 35, 18)
FORMATS = {  # one line shape per event, each matched by its HDFS template
    "E22": "INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /user/root/rand/part-00001. {b}",
    "E5": "INFO dfs.DataNode$DataXceiver: Receiving block {b} src: /10.250.1.1:40000 dest: /10.250.1.2:50010",
    "E2": "INFO dfs.DataBlockScanner: Verification succeeded for {b}",
    "E23": "INFO dfs.FSNamesystem: BLOCK* NameSystem.delete: {b} is added to invalidSet of 10.250.1.2:50010",
    "E21": "INFO dfs.FSDataset: Deleting block {b} file /mnt/hadoop/dfs/data/current/subdir1/{b}",
}


def line(t: float, event: str, block: str) -> bytes:
    """One HDFS line ``t`` seconds into the log."""
    stamp = (START + timedelta(seconds=t)).strftime("%y%m%d %H%M%S")
    return f"{stamp} 143 {FORMATS[event].format(b=block)}\n".encode()


# --- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    """A decision tree on simulated sessions, in memory (the simulated logs below use other seeds)."""
    train, val = simulate_sessions(2000, 0.05, seed=7), simulate_sessions(800, 0.05, seed=8)
    model = CountBaseline("decision-tree").fit(train, val)
    return Bundle(model=model, kind="decision-tree", name="decision-tree", config={},
                  vocabulary=list(model.vocab_.events_))  # fmt: skip


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    """A simulated raw log of 1,200 blocks (~23 k lines)."""
    return simulate_logs(1200, 0.05, seed=3, out_dir=tmp_path_factory.mktemp("sim")).log


@pytest.fixture(scope="module")
def scored(sim, bundle) -> pl.DataFrame:
    """``score_table`` over the whole parsed log."""
    return score_table(bundle, parse_logs_report([sim]).sessions)


@pytest.fixture(scope="module")
def reference(scored) -> dict[str, tuple[str, float]]:
    """session -> (verdict, score) of scoring the whole log."""
    return {sid: (v, s) for sid, v, s in scored.select("session_id", "verdict", "score").iter_rows()}


def chunks(log: Path, n: int) -> list[bytes]:
    """The log in ``n`` pieces of whole lines."""
    lines = log.read_bytes().splitlines(keepends=True)
    step = -(-len(lines) // n)
    return [b"".join(lines[i : i + step]) for i in range(0, len(lines), step)]


def verdicts(out: Path) -> pl.DataFrame:
    return pl.read_ndjson(out) if out.exists() and out.stat().st_size else pl.DataFrame()


def assert_same_as_score(out: Path, reference: dict[str, tuple[str, float]]) -> pl.DataFrame:
    got = verdicts(out)
    assert got["session_id"].is_unique().all(), "a session was written twice"
    assert set(got["session_id"]) == set(reference), "a session was lost (or invented)"
    for sid, verdict, score in got.select("session_id", "verdict", "score").iter_rows():
        assert (verdict, score) == reference[sid], sid
    return got


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


# --- the whole log, fed in pieces ------------------------------------------------------------------------------


def test_chunks_rotation_crash_and_restart_give_the_verdicts_of_score(tmp_path, sim, bundle, reference):
    """Chunks (one cut mid-line), a rotation right after a checkpoint, a crash before the next one, a restart
    that finds the rotated file by inode and skips what it had already written: every session exactly once,
    with the verdict and score that scoring the whole parsed log gives."""
    log, out, state = tmp_path / "HDFS.log", tmp_path / "alerts.jsonl", tmp_path / "watch.state"
    opts = WatchOptions(all_sessions=True, read_bytes=128 << 10, end_grace=600)  # simulated deletes end in < 6 min
    parts, said = chunks(sim, 8), []
    w = Watcher(bundle, [str(log)], opts, out=out, state=state, say=said.append)
    for part in parts[:5]:
        append(log, part[: len(part) // 2 + 7])  # an unfinished line waits for its end
        w.drain()
        append(log, part[len(part) // 2 + 7 :])
        w.drain()
    w.checkpoint()
    written_at_checkpoint = len(verdicts(out))
    log.rename(tmp_path / "HDFS.log.1")  # logrotate: rename, then the writer starts a new file
    append(log, parts[5])
    w.drain()
    assert len(verdicts(out)) > written_at_checkpoint  # alerts the crashed run wrote after its checkpoint
    w.close()  # kill -9: no flush, no final checkpoint

    w = Watcher(bundle, [str(log)], opts, out=out, state=state, say=said.append)
    assert sum(w.skip.values()) == len(verdicts(out)) - written_at_checkpoint
    for part in parts[6:]:
        append(log, part)
        w.drain()
    summary = w.finish()
    w.close()
    got = assert_same_as_score(out, reference)
    assert not w.skip  # every record written after the checkpoint came round again and was skipped
    assert summary.still_open == 0 and got["partial"].sum() == (got["closed"] == "shutdown").sum()
    assert any("rotated while we were stopped" in s for s in said)


def test_once_reads_a_finished_log_like_parse(tmp_path, sim, bundle, reference):
    out = tmp_path / "a.jsonl"
    summary = Watcher(bundle, [str(sim)], WatchOptions(once=True, all_sessions=True), out=out).run()
    got = assert_same_as_score(out, reference)
    assert summary.scored == len(reference) == got.height
    assert set(got["closed"]) <= {"end", "idle", "eof"} and (got["closed"] == "end").sum() > len(reference) // 2


def test_only_alerts_are_written_by_default(tmp_path, sim, bundle, scored):
    """Alerts as `score --only-alerts` keeps them: anomaly verdicts and sessions with never-seen events."""
    out = tmp_path / "a.jsonl"
    Watcher(bundle, [str(sim)], WatchOptions(once=True), out=out).run()
    expected = scored.filter((pl.col("verdict") == "anomaly") | pl.col("new_event"))["session_id"]
    assert 0 < len(expected) < scored.height
    assert sorted(verdicts(out)["session_id"]) == sorted(expected)


def test_lines_out_of_time_order_come_out_as_parse_orders_them(tmp_path, bundle):
    """Lines that arrive later but are earlier in time: events in (time, line) order, exactly as in parse."""
    rows = [line(5, "E5", "blk_1"), line(3, "E22", "blk_1"), line(4, "E2", "blk_2"),
            line(1, "E2", "blk_1"), line(2, "E5", "blk_1"), line(2, "E21", "blk_1")]  # fmt: skip
    log = tmp_path / "o.log"
    log.write_bytes(b"".join(rows))
    expected = dict(parse_logs_report([log]).sessions.select("session_id", "events").iter_rows())
    log.write_bytes(b"".join(rows[:3]))
    w = Watcher(bundle, [str(log)], WatchOptions(all_sessions=True))
    w.drain()
    append(log, b"".join(rows[3:]))
    w.drain()
    closed = in_time_order(w.sessions.take_all("eof"))
    events = w.events.decode(closed.select(packed_codes(pl.col("events"))).to_series())
    assert dict(zip(closed["session_id"], events.to_list(), strict=True)) == expected
    assert expected["blk_1"] == ["E2", "E5", "E21", "E22", "E5"]
    w.close()


def test_explain_adds_an_explanation_to_each_alert(tmp_path, sim, bundle):
    out = tmp_path / "a.jsonl"
    Watcher(bundle, [str(sim)], WatchOptions(once=True, explain=True), out=out).run()
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert records and all(r["explanation"]["session_id"] == r["session_id"] for r in records)
    assert any(r["explanation"]["weighing"] for r in records)


def test_a_mined_template_bundle_follows_like_parse_with_its_miner(tmp_path, sim, bundle):
    labels = sim.parent / "anomaly_label.csv"
    mined = parse_logs_report([sim], labels=labels, templates="mine")
    miner_file = tmp_path / "miner.json"
    mined.miner.save(miner_file)
    model = CountBaseline("decision-tree").fit(mined.sessions, mined.sessions)
    mb = Bundle(model=model, kind="decision-tree", name="mined", config={}, vocabulary=list(model.vocab_.events_),
                templates="miner", miner_state=json.loads(miner_file.read_text()))  # fmt: skip
    expected = score_table(mb, parse_logs_report([sim], templates=miner_file).sessions)
    out = tmp_path / "a.jsonl"
    w = Watcher(mb, [str(sim)], WatchOptions(once=True, all_sessions=True), out=out)
    assert w.sessions.end_codes  # E23/E30 found among the mined templates
    w.run()
    ref = {sid: (v, sc) for sid, v, sc in expected.select("session_id", "verdict", "score").iter_rows()}
    got = assert_same_as_score(out, ref)
    assert (got["closed"] == "end").sum() > got.height // 2


# --- following files -------------------------------------------------------------------------------------------


def test_truncation_deletion_and_a_file_that_appears_later(tmp_path, bundle):
    log, out = tmp_path / "later.log", tmp_path / "a.jsonl"
    said: list[str] = []
    w = Watcher(bundle, [str(log)], WatchOptions(all_sessions=True), out=out, say=said.append)
    assert not w.step() and any("not there yet" in s for s in said)
    log.write_bytes(line(0, "E22", "blk_1") + line(1, "E5", "blk_1"))
    w.drain()
    log.write_bytes(b"")  # copytruncate: copied elsewhere, then cut to nothing
    w.drain()
    append(log, line(2, "E22", "blk_2") + line(3, "E5", "blk_2"))
    w.drain()
    log.write_bytes(line(4, "E22", "blk_3") * 3)  # truncated and rewritten past our offset: first bytes differ
    w.drain()
    log.unlink()  # deleted; the writer makes it again
    w.drain()
    log.write_bytes(line(5, "E22", "blk_4"))
    w.drain()
    summary = w.finish()
    w.close()
    got = verdicts(out)
    assert sorted(got["session_id"]) == ["blk_1", "blk_2", "blk_3", "blk_4"]
    assert got.filter(pl.col("session_id") == "blk_3")["events"].item() == 3
    assert summary.truncations == 2 and summary.rotations == 0
    assert any("deleted" in s for s in said)


def test_a_rotated_file_is_read_to_its_end_before_the_new_one(tmp_path, bundle):
    log, out = tmp_path / "r.log", tmp_path / "a.jsonl"
    log.write_bytes(line(0, "E22", "blk_1"))
    w = Watcher(bundle, [str(log)], WatchOptions(all_sessions=True), out=out)
    w.drain()
    append(log, line(1, "E5", "blk_1"))  # written just before the rotation, not yet read
    log.rename(tmp_path / "r.log.1")
    log.write_bytes(line(2, "E2", "blk_1"))
    w.drain()
    summary = w.finish()
    w.close()
    assert summary.rotations == 1
    assert verdicts(out).filter(pl.col("session_id") == "blk_1")["events"].item() == 3


def test_a_block_spread_over_two_logs_is_one_session_in_time_order(tmp_path, bundle):
    """A NameNode log and a DataNode log followed together: their lines of a block join, ordered by time."""
    namenode, datanode, out = tmp_path / "nn.log", tmp_path / "dn.log", tmp_path / "a.jsonl"
    namenode.write_bytes(line(0, "E22", "blk_1") + line(10, "E23", "blk_1"))
    datanode.write_bytes(line(1, "E5", "blk_1") + line(2, "E5", "blk_1"))
    w = Watcher(bundle, [str(namenode), str(datanode)], WatchOptions(all_sessions=True, once=True), out=out)
    w.drain()
    closed = in_time_order(w.sessions.take_all("eof"))
    assert w.events.decode(closed.select(packed_codes(pl.col("events"))).to_series()).to_list() == [
        ["E22", "E5", "E5", "E23"]
    ]
    w.close()


def test_stdin_is_read_to_its_end(tmp_path, bundle, monkeypatch):
    r, wfd = os.pipe()
    os.write(wfd, line(0, "E22", "blk_7") + line(1, "E5", "blk_7") + line(2, "E5", "blk_8")[:-1])  # no final \n
    os.close(wfd)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.FileIO(r))))
    out = tmp_path / "a.jsonl"
    summary = Watcher(bundle, ["-"], WatchOptions(all_sessions=True), out=out).run()
    got = verdicts(out).sort("session_id")
    assert got["session_id"].to_list() == ["blk_7", "blk_8"] and got["closed"].to_list() == ["eof", "eof"]
    assert summary.lines == 3 and got["partial"].all()


def test_a_runaway_line_is_rejected_without_being_held(tmp_path, bundle):
    log, out = tmp_path / "r.log", tmp_path / "a.jsonl"
    runaway = b"x" * 300_000 + b"\n"  # longer than a read: only its head is ever held
    log.write_bytes(line(0, "E22", "blk_1") + runaway + line(1, "E5", "blk_1") + line(2, "E5", "blk_1")[:-1])
    opts = WatchOptions(once=True, all_sessions=True, read_bytes=128 << 10)
    summary = Watcher(bundle, [str(log)], opts, out=out).run()
    assert summary.lines == 4 and summary.rejected == 1  # the last line had no newline: it still counts
    assert verdicts(out)["events"].to_list() == [3]


def test_from_end_skips_what_is_already_there(tmp_path, bundle):
    log, out = tmp_path / "e.log", tmp_path / "a.jsonl"
    log.write_bytes(line(0, "E22", "blk_1") + line(1, "E22", "blk_2"))
    w = Watcher(bundle, [str(log)], WatchOptions(all_sessions=True, from_end=True), out=out)
    w.drain()
    append(log, line(2, "E5", "blk_2") + line(3, "E22", "blk_3"))
    w.drain()
    w.finish()
    w.close()
    assert sorted(verdicts(out)["session_id"]) == ["blk_2", "blk_3"]
    assert verdicts(out).filter(pl.col("session_id") == "blk_2")["events"].item() == 1


# --- closing rules ---------------------------------------------------------------------------------------------


def test_sessions_close_on_end_events_after_the_grace_and_on_idle_time(tmp_path, bundle):
    log, out = tmp_path / "c.log", tmp_path / "a.jsonl"
    log.write_bytes(line(0, "E22", "blk_100") + line(0, "E22", "blk_200") + line(10, "E23", "blk_100"))
    w = Watcher(bundle, [str(log)], WatchOptions(all_sessions=True, idle=100, end_grace=60), out=out)
    w.drain()
    assert w.sessions.height == 2
    append(log, line(69, "E2", "blk_300"))  # end event 59 s old: still open (late lines may come)
    w.drain()
    assert w.sessions.height == 3 and verdicts(out).height == 0
    append(log, line(70, "E21", "blk_100") + line(71, "E2", "blk_300"))  # a late line still joins
    w.drain()
    got = verdicts(out)
    assert got["session_id"].to_list() == ["blk_100"] and got["closed"].item() == "end"
    assert got["events"].item() == 3 and not got["partial"].item()
    append(log, line(101, "E2", "blk_300"))  # blk_idle's last line is now 101 s old
    w.drain()
    assert verdicts(out).filter(pl.col("session_id") == "blk_200")["closed"].item() == "idle"
    w.close()


def test_a_quiet_log_closes_sessions_by_wall_time(tmp_path, bundle):
    log, out = tmp_path / "q.log", tmp_path / "a.jsonl"
    log.write_bytes(line(0, "E22", "blk_400"))
    w = Watcher(bundle, [str(log)], WatchOptions(all_sessions=True, idle=0.3), out=out)
    w.drain()
    w.tick()
    assert w.sessions.height == 1  # the log clock alone has not moved
    time.sleep(0.4)
    w.tick()
    assert w.sessions.height == 0 and verdicts(out)["closed"].item() == "quiet"
    w.close()


def test_no_end_events_means_only_idle_closes(tmp_path, bundle):
    log, out = tmp_path / "n.log", tmp_path / "a.jsonl"
    log.write_bytes(line(0, "E23", "blk_1") + line(5000, "E2", "blk_2"))
    w = Watcher(bundle, [str(log)], WatchOptions(all_sessions=True, end_events=(), end_grace=0), out=out)
    w.drain()
    assert w.sessions.height == 2
    w.close()
    with pytest.raises(LogsieveError, match="E99"):
        Watcher(bundle, [str(log)], WatchOptions(end_events=("E99",)))


def test_max_open_evicts_the_least_recently_active_and_memory_stays_flat(tmp_path, bundle):
    """A long stream of blocks that never end: the open table never exceeds --max-open, every eviction is
    counted and written as partial, and RSS stops growing once the table is full."""
    log, out = tmp_path / "long.log", tmp_path / "a.jsonl"
    max_open, per_chunk, n_chunks = 2_000, 25_000, 16
    w = Watcher(bundle, [str(log)], WatchOptions(max_open=max_open, read_bytes=1 << 20), out=out,
                say=lambda _: None)  # fmt: skip
    rss, sizes = [], []
    for c in range(n_chunks):
        lines = pl.Series([f"blk_{c * per_chunk + i}" for i in range(per_chunk)])
        text = pl.select(pl.format("081109 2{} 143 INFO dfs.DataBlockScanner: Verification succeeded for {}",
                                   pl.lit(f"{10000 + c:05d}"), lines)).to_series()  # fmt: skip
        append(log, ("\n".join(text) + "\n").encode())
        w.drain()
        assert w.sessions.height <= max_open
        sizes.append(w.sessions.estimated_size())
        rss.append(_rss_mb())
    summary = w.finish()
    w.close()
    n = per_chunk * n_chunks
    assert summary.scored == n and summary.evicted == n - max_open and summary.lines == n
    got = verdicts(out)  # every eviction is written, whatever its verdict (alerts only otherwise)
    assert (got["closed"] == "evicted").sum() == n - max_open and got["partial"].all()
    assert max(sizes) < 2 * sizes[1]
    assert rss[-1] - rss[n_chunks // 4] < 40, rss  # MB: flat after warm-up, though 16x the lines went through


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_sigterm_flushes_open_sessions_as_partial_and_returns(tmp_path, bundle):
    log, out = tmp_path / "t.log", tmp_path / "a.jsonl"
    log.write_bytes(line(0, "E22", "blk_1") + line(0, "E22", "blk_2"))
    w = Watcher(bundle, [str(log)], WatchOptions(all_sessions=True, poll=0.02), out=out)
    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    summary = w.run()
    got = verdicts(out)
    assert sorted(got["session_id"]) == ["blk_1", "blk_2"] and (got["closed"] == "shutdown").all()
    assert got["partial"].all() and summary.partial == 2 and summary.still_open == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_keep_open_carries_open_sessions_to_the_next_run(tmp_path, bundle):
    log, out, state = tmp_path / "k.log", tmp_path / "a.jsonl", tmp_path / "s"
    log.write_bytes(line(0, "E22", "blk_1"))
    w = Watcher(bundle, [str(log)], WatchOptions(all_sessions=True, keep_open=True), out=out, state=state)
    w.drain()
    assert w.finish().still_open == 1 and verdicts(out).height == 0
    w.close()
    append(log, line(1, "E5", "blk_1"))
    w = Watcher(bundle, [str(log)], WatchOptions(all_sessions=True), out=out, state=state)
    w.drain()
    w.finish()
    w.close()
    assert verdicts(out)["events"].to_list() == [2]


# --- state file ------------------------------------------------------------------------------------------------


def test_a_torn_last_record_is_cut_and_damaged_state_is_one_error(tmp_path):
    out = tmp_path / "a.jsonl"
    out.write_bytes(b'{"session_id": "old"}\n{"session_id": "a"}\n{"session_id": "a"}\n{"session_id": "b", "sc')
    offset = len(b'{"session_id": "old"}\n')
    assert written_since(out, offset) == {"a": 2}
    assert out.read_bytes().endswith(b'"a"}\n')
    assert written_since(out, out.stat().st_size + 10) == {}  # rotated by someone else: nothing to skip
    state = tmp_path / "s"
    write_state(state, {"x": 1}, b"ipc")
    assert read_state(state) == ({"version": 1, "x": 1}, b"ipc")
    state.write_bytes(b"garbage")
    with pytest.raises(LogsieveError, match="not a watch state file"):
        read_state(state)


def test_durations_and_bad_options_are_one_line_errors(tmp_path):
    assert parse_duration("90") == 90 and parse_duration("10m") == 600 and parse_duration("4h") == 14400
    with pytest.raises(LogsieveError, match="--idle"):
        parse_duration("soon", "--idle")
    res = CliRunner().invoke(app, ["watch", str(tmp_path / "nope.log"), "--model", str(tmp_path), "--idle", "0"])
    assert res.exit_code == 2 and "idle" in res.output and "Traceback" not in res.output


# --- the command, as a process ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    """An exported decision-tree bundle for the command line."""
    from logsieve.config import resolve_preset
    from logsieve.data.load import DataInfo
    from logsieve.serving.bundle import export_bundle
    from logsieve.training.runs import make_splits
    from logsieve.training.study import baseline_run

    root = tmp_path_factory.mktemp("bundle")
    df = simulate_sessions(2000, 0.05, seed=7).select("session_id", "label", "events")
    splits = make_splits(df, resolve_preset("baseline", 0))
    baseline_run("decision-tree", 0, splits, root / "run", DataInfo.of(df, "simulated", "0" * 64),
                 resolve_preset("baseline").data)  # fmt: skip
    return export_bundle(root / "run", root / "bundle")


def _watch(log: Path, bundle_dir: Path, out: Path, state: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "logsieve.cli", "watch", str(log), "--model", str(bundle_dir), "--out", str(out),
           "--state", str(state), "--all", "--checkpoint", "0.1", "--poll", "0.05", "--end-grace", "10m",
           *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def _wait_until_read(state: Path, log: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until the state file says the process has read ``log`` to its current end."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        loaded = read_state(state) if state.exists() else None
        if loaded:
            pos = loaded[0]["inputs"].get(str(log.resolve()))
            if pos and pos["ino"] == log.stat().st_ino and pos["offset"] == log.stat().st_size:
                return
        time.sleep(0.05)
    raise AssertionError("watch did not catch up")


@pytest.mark.slow
def test_cli_kill9_restart_and_sigterm_give_the_verdicts_of_score(tmp_path, sim, bundle_dir):
    """The brief's end-to-end check, as processes: chunks, a rotation in the middle, kill -9 and a restart,
    SIGTERM at the end (exit 0, open sessions flushed as partial): the verdicts of `score_table`."""
    from logsieve.serving.bundle import load_bundle

    reference = score_table(load_bundle(bundle_dir), parse_logs_report([sim]).sessions)
    expected = {sid: (v, s) for sid, v, s in reference.select("session_id", "verdict", "score").iter_rows()}
    log, out, state = tmp_path / "HDFS.log", tmp_path / "alerts.jsonl", tmp_path / "watch.state"
    parts = chunks(sim, 6)
    proc = _watch(log, bundle_dir, out, state)
    for i, part in enumerate(parts[:4]):
        if i == 2:
            log.rename(tmp_path / "HDFS.log.1")
        append(log, part)
        _wait_until_read(state, log, proc)
    append(log, parts[4])  # a crash while (or before) it reads this piece
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc = _watch(log, bundle_dir, out, state)
    append(log, parts[5])
    _wait_until_read(state, log, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    got = assert_same_as_score(out, expected)
    flushed = got.filter(pl.col("closed") == "shutdown")
    assert flushed.height > 0 and flushed["partial"].all()
    assert "resumed from" in err and "sessions scored" in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_reads_stdin_once(tmp_path, sim, bundle_dir):
    out = tmp_path / "a.jsonl"
    cmd = [sys.executable, "-m", "logsieve.cli", "watch", "-", "--model", str(bundle_dir), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with open(sim, "rb") as f:
        res = subprocess.run(cmd, stdin=f, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert verdicts(out).height > 0 and (verdicts(out)["verdict"] == "anomaly").any()
