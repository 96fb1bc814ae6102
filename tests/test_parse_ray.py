"""`parse --backend ray`: Ray Data gives the single-machine session table exactly (rows, order, labels, line numbers,
reject statistics and the reject file), on the HDFS path and the any-format path with a saved miner and a session
key; what stays on one machine (mining, windows, stdin) is refused with one clear line.

One local Ray of 2 CPUs serves the whole module (starting it costs ~10 s); the tests that use it are marked slow,
the refusals (no Ray needed) are not."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner, Result

from logsieve.cli import app
from logsieve.errors import LogsieveError
from logsieve.parsing.format_pipeline import SessionRule, parse_format_report
from logsieve.parsing.pipeline import ParseResult, parse_logs_report
from logsieve.parsing.sessionize import BLOCK_RE

HAS_RAY = importlib.util.find_spec("ray") is not None
_NO_RAY = pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (pip install 'logsieve[ray]')")


def needs_ray(test):  # noqa: ANN001, ANN201
    """Skipped without ray; slow (the module's local Ray takes ~10 s to start, each parse a few seconds)."""
    return pytest.mark.slow(_NO_RAY(test))


# new blocks that one line starts; with 2 CPUs (8 buckets) their buckets fall (4, 3, 2, 1), so the bucket order alone
# would reverse them
TIED = "blk_7001 blk_123456 blk_88 blk_5"
CHUNK = 256 << 10  # several tasks per file, so offsets, per-file line numbers and merging are exercised
EXTRA = (  # (line, why): rejects of every kind, a block-less line, two new blocks starting on one line
    b"\n",  # empty
    b"garbage that is no HDFS line\n",  # malformed
    b"\xff\xfe not utf-8\n",  # non_utf8
    b"081109 203518 1 INFO dfs.Foo: a message no template knows\n",  # no_template
    b"081109 203518 1 INFO dfs.FSNamesystem: BLOCK* ask 10.0.0.1:50010 to delete  " + TIED.encode() + b"\n",
    b"081109 203518 1 INFO dfs.DataNode: Receiving block none src: /10.0.0.2:1 dest: /10.0.0.3:2\n",  # no block
)


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray of 2 CPUs for the module; the parse functions use it as they find it (and leave it running)."""
    if not HAS_RAY:
        pytest.skip("ray is not installed (pip install 'logsieve[ray]')")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A simulated HDFS log, a copy with bad lines in the middle, its .gz, and the labels."""
    from logsieve.simulator.simulate import simulate_logs

    root = tmp_path_factory.mktemp("ray_logs")
    sim = simulate_logs(1500, 0.05, seed=11, out_dir=root)
    lines = sim.log.read_bytes().splitlines(keepends=True)
    bad = root / "bad.log"
    bad.write_bytes(b"".join(lines[:700]) + b"".join(EXTRA) + b"".join(lines[700:1500]))
    gz = root / "bad.log.gz"
    gz.write_bytes(gzip.compress(bad.read_bytes()))
    return {"log": sim.log, "labels": sim.labels, "bad": bad, "gz": gz, "root": root}


def _inputs(logs: dict[str, Path]) -> list[str | Path]:
    # the big log twice: its times start again, so sessions must be re-sorted in time, not concatenated
    return [logs["log"], logs["bad"], logs["gz"], logs["log"]]


def _same(a: ParseResult, b: ParseResult) -> None:
    assert_frame_equal(a.sessions, b.sessions)
    assert_frame_equal(a.files, b.files)
    assert a.stats == b.stats  # lines, counts, unblocked, kept reject rows (in order)
    assert list(a.stats.counts.items()) == list(b.stats.counts.items())  # same order: the summary lists ties so


def _cli(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


# --- identical output ---------------------------------------------------------------------------------------------


@needs_ray
def test_hdfs_known_templates_equal_the_local_parse(ray_local, logs, tmp_path: Path) -> None:
    from logsieve.parsing.distributed import _plan, parse_logs_ray

    assert len(_plan(_inputs(logs), CHUNK)[1]) >= 8  # really spread: many byte ranges plus one .gz task
    rej_a, rej_b = tmp_path / "a.csv", tmp_path / "b.csv"
    local = parse_logs_report(_inputs(logs), labels=logs["labels"], rejects=rej_a)
    ray = parse_logs_ray(_inputs(logs), labels=logs["labels"], rejects=rej_b, chunk_bytes=CHUNK)
    _same(local, ray)
    assert rej_a.read_bytes() == rej_b.read_bytes()
    counts = ray.stats.counts
    assert {"empty", "malformed", "non_utf8", "no_template"} <= set(counts) and ray.stats.unblocked == 2
    s = ray.sessions
    assert s.height > 1500 and s["label"].sum() > 0
    tied = s.filter(pl.col("session_id").is_in(TIED.split()))["session_id"].to_list()
    assert tied == TIED.split()  # one line starts them all: they keep the line's order


@needs_ray
def test_hdfs_saved_miner_equals_the_local_parse(ray_local, logs, tmp_path: Path) -> None:
    from logsieve.parsing.distributed import parse_logs_ray

    miner = tmp_path / "miner.json"
    mined = parse_logs_report([logs["log"]], templates="mine").miner
    assert mined is not None
    mined.save(miner)
    local = parse_logs_report(_inputs(logs), templates=miner)
    ray = parse_logs_ray(_inputs(logs), templates=miner, chunk_bytes=CHUNK)
    _same(local, ray)
    assert ray.miner is not None and ray.miner.to_state() == local.miner.to_state()  # type: ignore[union-attr]


@needs_ray
def test_format_path_saved_miner_and_session_key_equal_the_local_parse(ray_local, logs, tmp_path: Path) -> None:
    from logsieve.parsing.distributed import parse_format_ray

    miner = tmp_path / "miner.json"
    rule = SessionRule.of(key=BLOCK_RE)
    mined = parse_format_report([logs["log"]], "HDFS", rule, templates="mine").miner
    assert mined is not None
    mined.save(miner)
    inputs = _inputs(logs)
    opts = {"labels": logs["labels"], "templates": miner, "rejects": tmp_path / "a.csv"}
    local = parse_format_report(inputs, "HDFS", rule, **opts)
    ray = parse_format_ray(inputs, "HDFS", rule, **opts | {"rejects": tmp_path / "b.csv"}, chunk_bytes=CHUNK)
    _same(local, ray)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    # the shipped templates (no_template rejects come after the read rejects) and per-line labels
    opts = {"templates": "hdfs", "label_regex": "Exception|WARN"}
    _same(parse_format_report(inputs, "HDFS", rule, **opts), parse_format_ray(inputs, "HDFS", rule, **opts))


@needs_ray
def test_any_format_with_a_capture_group_key(ray_local, tmp_path: Path) -> None:
    """A custom format without HDFS anything; one line starts two jobs, whose buckets (1, 0) would reverse them."""
    from logsieve.parsing.distributed import parse_format_ray

    fmt = tmp_path / "app.toml"
    fmt.write_text(
        "pattern = '<Date> <Time> [<Level>] <Content>'\n"
        "time = { fields = ['Date', 'Time'], format = '%Y-%m-%d %H:%M:%S' }\n"
        "masks = [{ pattern = '\\d+' }]\n"
    )
    texts = ["job j1 started", "job j2 and job j9 started", "job j1 wrote 5 bytes", "job j2 failed", "job j9 done"]
    log = tmp_path / "app.log"
    log.write_text("".join(f"2024-01-01 00:00:{i:02d} [{'ERROR' if 'fail' in t else 'INFO'}] {t}\n"
                           for i, t in enumerate(texts * 40)))  # fmt: skip
    rule = SessionRule.of(key=r"job (j\d+)")
    miner = tmp_path / "m.json"
    mined = parse_format_report([log], fmt, rule, templates="mine").miner
    assert mined is not None
    mined.save(miner)
    local = parse_format_report([log], fmt, rule, templates=miner, label_regex=r"\[ERROR\]")
    ray = parse_format_ray([log], fmt, rule, templates=miner, label_regex=r"\[ERROR\]", chunk_bytes=1 << 10)
    _same(local, ray)
    assert ray.sessions["session_id"].to_list() == ["j1", "j2", "j9"] and ray.sessions["label"].to_list() == [0, 1, 0]


@needs_ray
def test_cli_backend_ray_writes_the_local_table(ray_local, logs, tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert _cli("parse", logs["log"], logs["bad"], "--labels", logs["labels"], "--out", a).exit_code == 0
    r = _cli("parse", logs["log"], logs["bad"], "--labels", logs["labels"], "--out", b, "--backend", "ray")
    assert r.exit_code == 0, r.output
    assert_frame_equal(pl.read_parquet(a), pl.read_parquet(b))


@needs_ray
def test_a_file_a_node_cannot_read_is_one_clear_line(ray_local, logs, monkeypatch: pytest.MonkeyPatch) -> None:
    from logsieve.parsing import distributed

    plan = distributed._plan

    def gone(paths: list, chunk_bytes: int) -> tuple:  # planned here, then missing where the task runs
        sources, tasks = plan(paths, chunk_bytes)
        tasks[-1]["source"] = str(logs["root"] / "not-on-this-node.log")
        return sources, tasks

    monkeypatch.setattr(distributed, "_plan", gone)
    with pytest.raises(LogsieveError, match=r"not-on-this-node.log: cannot read \(No such file"):
        distributed.parse_logs_ray([logs["log"]], chunk_bytes=CHUNK)


# --- what stays on one machine: one clear line, exit 2 --------------------------------------------------------------


def test_refusals_name_the_way_out(logs, tmp_path: Path) -> None:
    """No Ray needed: every refusal comes before Ray starts."""
    from logsieve.parsing.distributed import parse_format_ray, parse_logs_ray

    out = tmp_path / "s.parquet"
    cases = [
        (("--templates", "mine"), "fixed template set"),
        (("--format", "HDFS", "--window", "60s"), "--window/--lines sessions are built on one machine"),
        (("--lines", "100"), "--window/--lines sessions are built on one machine"),
        (("--backend", "spark"), "--backend must be local or ray"),
    ]
    for extra, message in cases:
        backend = () if "--backend" in extra else ("--backend", "ray")
        r = _cli("parse", logs["log"], "--out", out, *backend, *extra)
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, (extra, r.output)
    r = _cli("parse", logs["log"], "--out", out, "--workers", "2")
    assert r.exit_code == 2 and "--address and --workers apply to --backend ray" in r.output
    with pytest.raises(LogsieveError, match="save stdin"):
        parse_logs_ray(["-"])
    with pytest.raises(LogsieveError, match="fixed template set"):
        parse_format_ray([logs["log"]], "HDFS", SessionRule.of(key=BLOCK_RE), templates="mine")
    assert not out.exists()


@_NO_RAY
def test_an_address_nobody_listens_on_is_one_clear_line(logs, tmp_path: Path) -> None:
    r = _cli("parse", logs["log"], "--out", tmp_path / "s.parquet", "--backend", "ray", "--address", "127.0.0.1:1")
    assert r.exit_code == 2 and "cannot reach a Ray cluster at 127.0.0.1:1" in r.output, r.output


def test_without_ray_one_line_says_how_to_install(logs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    r = _cli("parse", logs["log"], "--out", tmp_path / "s.parquet", "--backend", "ray")
    assert r.exit_code == 2 and "pip install 'logsieve[ray]'" in r.output, r.output
