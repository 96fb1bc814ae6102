"""Log formats as data (formats.toml, --format NAME|FILE), the any-format reader and mining with the format's masks.

The Loghub 2k samples (../shared/data/loghub2k or $LOGSIEVE_DATA/loghub2k) are used read-only and the tests that
need them skip cleanly without them.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
from conftest import LOGHUB_MISSING, find_shared
from pydantic import ValidationError
from typer.testing import CliRunner

from logsieve.cli import app
from logsieve.errors import LogsieveError
from logsieve.parsing.accuracy import grouping_accuracy
from logsieve.parsing.formats import LogFormat, compile_pattern, resolve_format, shipped_formats
from logsieve.parsing.reader import mine_templates, read_format

SYSTEMS = [
    "HDFS", "Hadoop", "Spark", "Zookeeper", "OpenStack", "BGL", "HPC", "Thunderbird",
    "Windows", "Linux", "Mac", "Android", "HealthApp", "Apache", "OpenSSH", "Proxifier",
]  # fmt: skip
# Grouping accuracy measured by benchmarks/formats.py (deterministic) minus 0.01: a floor that catches regressions.
# Drain3 on the same lines and masks scores the same or lower on every system (benchmarks/results/formats.json).
FLOORS = {
    "HDFS": 0.98, "Hadoop": 0.95, "Spark": 0.91, "Zookeeper": 0.95, "OpenStack": 0.87, "BGL": 0.95, "HPC": 0.92,
    "Thunderbird": 0.94, "Windows": 0.99, "Linux": 0.68, "Mac": 0.81, "Android": 0.82, "HealthApp": 0.89,
    "Apache": 0.99, "OpenSSH": 0.79, "Proxifier": 0.51,
}  # fmt: skip


@pytest.fixture(scope="module")
def loghub() -> Path:
    path = find_shared("loghub2k", "HDFS/HDFS_2k.log")
    if path is None:
        pytest.skip(LOGHUB_MISSING)
    return path


# --- the shipped table -------------------------------------------------------------------------------------------


def test_all_16_systems_ship_and_compile() -> None:
    formats = shipped_formats()
    assert list(formats) == SYSTEMS
    for fmt in formats.values():
        assert fmt.field_names[-1] == "Content"
        assert fmt.regex.startswith("^") and fmt.regex.endswith("$")
        assert fmt.time is not None  # every shipped system says how to read its time
    assert formats["BGL"].label is not None and formats["BGL"].label.field == "Label"
    assert formats["Thunderbird"].label is not None
    assert formats["HDFS"].label is None


def test_formats_are_frozen_and_strict() -> None:
    fmt = shipped_formats()["HDFS"]
    with pytest.raises(ValidationError):
        fmt.pattern = "<Content>"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        LogFormat(name="x", pattern="<Content>", colour="red")  # type: ignore[call-arg]


def test_resolve_by_name_any_case() -> None:
    assert resolve_format("bgl") is shipped_formats()["BGL"]
    assert resolve_format("HDFS").name == "HDFS"


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("<Date> <Time>", "no <Content>"),
        ("<Content> <Date>", "must be the last"),
        ("<Date> <Date> <Content>", "twice"),
        ("<line> <Content>", "reserved"),
        ("<Date> (<Pid> <Content>", "never closed"),
        ("<Date>) <Content>", "closes no"),
        ("<Date> (<Pid>) <Content>", "lacks its '?'"),
        ("<Date> <Content>\\", "lone backslash"),
    ],
)
def test_bad_pattern_is_one_clear_error(tmp_path: Path, pattern: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace("?", r"\?")):
        compile_pattern(pattern)
    f = tmp_path / "bad.fmt"
    f.write_text(pattern + "\n")
    with pytest.raises(LogsieveError, match="bad.fmt"):
        resolve_format(f)


def test_unknown_name_and_missing_file() -> None:
    with pytest.raises(LogsieveError, match="neither a shipped format"):
        resolve_format("NoSuchSystem")


def test_pattern_takes_literals_literally(tmp_path: Path) -> None:
    """One line in a FILE: '|', '[', '.', '*' mean themselves; runs of spaces match any blanks."""
    f = tmp_path / "mine.fmt"
    f.write_text("# my service\n[<Time>] <Level> | <Module>.* <Content>  \r\n")
    fmt = resolve_format(f)
    assert fmt.name == "mine" and fmt.field_names == ["Time", "Level", "Module", "Content"]
    log = tmp_path / "a.log"
    log.write_text("[t1] INFO | web.* hello 1\n[t2] WARN |   db.* bye\nt3 INFO | web.* no brackets\nx] y | z.q c\n")
    table, stats = read_format([log], fmt, keep_rejects=True)
    assert table["Module"].to_list() == ["web", "db"]
    assert table["Content"].to_list() == ["hello 1", "bye"]
    assert table["file_line"].to_list() == [1, 2]
    assert stats.counts == {"malformed": 2}
    assert [(r[1], r[2]) for r in stats.rows] == [(3, "malformed"), (4, "malformed")]


def test_toml_file_with_masks_time_and_label(tmp_path: Path) -> None:
    f = tmp_path / "svc.toml"
    f.write_text(
        "\n".join(
            [
                'name = "svc"',
                "pattern = '<Flag> <Date> <Time> <Level> <Content>'",
                "fields = { Level = '[A-Z]+' }",
                "masks = ['ip', { pattern = 'user\\w+', replacement = '<USER>' }, 'num']",
                "miner = { depth = 4, sim_threshold = 0.4 }",
                "time = { fields = ['Date', 'Time'], format = '%Y-%m-%d %H:%M:%S' }",
                "label = { field = 'Flag', normal = 'ok' }",
            ]
        )
    )
    fmt = resolve_format(f)
    assert fmt.name == "svc" and fmt.masks[1].replacement == "<USER>" and fmt.miner.sim_threshold == 0.4
    log = tmp_path / "svc.log"
    log.write_text(
        "ok 2024-01-02 03:04:05 INFO login userann from 10.0.0.1 took 5 ms\n"
        "ALERT 2024-01-02 03:04:06 INFO login userbob from 10.0.0.2 took 17 ms\n"
        "ok 2024-01-02 03:04:61 INFO login usercid from 10.0.0.3 took 1 ms\n"  # second 61: bad time
        "ok 2024-01-02 03:04:07 info lowercase level is not a Level\n"
        "\n"
    )
    table, stats = read_format([log], fmt, keep_rejects=True)
    assert table.height == 2
    assert table["label"].to_list() == [False, True]
    assert table["timestamp"].dt.second().to_list() == [5, 6]
    assert stats.lines == 5 and stats.counts == {"bad_timestamp": 1, "malformed": 1, "empty": 1}
    assert sorted(r[1] for r in stats.rows) == [3, 4, 5]
    ids, miner = mine_templates(table, fmt)
    assert ids.n_unique() == 1  # the format's masks make both lines one template
    assert miner.templates_["template"].to_list() == ["login <USER> from <*> took <*> ms"]


def test_a_format_miner_saves_and_reloads_its_masks(tmp_path: Path) -> None:
    """The masks travel with the miner state, so a saved miner reads new lines of that format the same way."""
    fmt = resolve_format(shipped_formats()["HDFS"])
    table = pl.DataFrame({"Content": ["Receiving block blk_1 src: /10.0.0.1:5 dest: /10.0.0.2:6", "Deleting blk_22"]})
    ids, miner = mine_templates(table, fmt)
    miner.save(tmp_path / "miner.json")
    from logsieve.parsing.mining import TemplateMiner

    again = TemplateMiner.load(tmp_path / "miner.json")
    assert again.masks == fmt.mask_pairs and again.sim_threshold == fmt.miner.sim_threshold
    new = ["Receiving block blk_9 src: /10.9.9.9:1 dest: /10.8.8.8:2", "Deleting blk_7"]
    assert again.transform(new).to_list() == ids.to_list()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("pattern = '<Date> <Content>'\ntime = { fields = ['When'], format = '%Y' }", "lacks"),
        ("pattern = '<Date> <Content>'\nlabel = { field = 'Flag' }", "lacks"),
        ("pattern = '<Date> <Content>'\nmasks = ['nosuchmask']", "unknown mask"),
        ("pattern = '<Date> <Content>'\nmasks = [{ pattern = '(unclosed' }]", "does not compile"),
        ("pattern = '<Date> <Content>'\nfields = { Date = '[a-' }", "does not compile"),
        ("pattern = '<Date> <Content>'\nfields = { Date = '(?<=x)a' }", "does not compile"),  # Python-only syntax
        ("pattern = '<Date> <Content>'\ncolour = 'red'", "Extra inputs"),
        ("pattern = '<Date> <Content>'\nmasks = [", "neither one header-pattern line nor a TOML table"),
        ("pattern = = broken", "no <Content>"),  # one line that is no TOML: read as a header pattern
    ],
)
def test_bad_toml_format_is_one_clear_error(tmp_path: Path, body: str, problem: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(body + "\n")
    with pytest.raises(LogsieveError, match=problem):
        resolve_format(f)


def test_rejects_binary_non_utf8_and_gz(tmp_path: Path) -> None:
    log = tmp_path / "x.log.gz"
    good = b"081109 203615 148 INFO dfs.DataNode: hello blk_1\n"
    with gzip.open(log, "wb") as f:
        f.write(good + b"081109 203615 148 INFO dfs.X: bin\x01ary\n" + b"\xff\xfe not utf8\n" + b"garbage\n" + good)
    table, stats = read_format([log], "HDFS", keep_rejects=True)
    assert table.height == 2 and table["line_number"].to_list() == [1, 5]
    assert stats.counts == {"binary": 1, "non_utf8": 1, "malformed": 1}
    assert table["timestamp"].dt.year().to_list() == [2008, 2008]


# --- the 16 Loghub samples ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("system", SYSTEMS)
def test_each_format_reads_its_sample_and_mines_it(loghub: Path, system: str) -> None:
    table, stats = read_format([loghub / system / f"{system}_2k.log"], system)
    truth = pl.read_csv(loghub / system / f"{system}_2k.log_structured.csv", infer_schema=False)
    assert stats.rejected == 0, stats.summary()
    assert table.height == truth.height == 2000
    assert table["Content"].equals(truth["Content"], check_names=False)  # the header split is Loghub's
    assert table["timestamp"].null_count() == 0
    ids, _ = mine_templates(table, system)
    assert grouping_accuracy(ids, truth["EventId"]) >= FLOORS[system]


def test_bgl_labels_come_from_the_format(loghub: Path) -> None:
    table, _ = read_format([loghub / "BGL" / "BGL_2k.log"], "BGL")
    truth = pl.read_csv(loghub / "BGL" / "BGL_2k.log_structured.csv", infer_schema=False)
    assert int(table["label"].sum()) == int((truth["Label"] != "-").sum()) == 143


# --- the CLI verb ------------------------------------------------------------------------------------------------


def test_formats_verb_lists_and_shows(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["formats"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    for name in SYSTEMS:
        assert name in res.output
    res = runner.invoke(app, ["formats", "bgl"], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "Label" in res.output and "epoch" in res.output
    bad = tmp_path / "bad.fmt"
    bad.write_text("<Date> <Time>\n")
    res = runner.invoke(app, ["formats", str(bad)])
    assert res.exit_code == 2 and "no <Content>" in res.output


def test_line_numbers_across_files(tmp_path: Path) -> None:
    """``line_number`` counts across all inputs in order (rejects included); ``file_line`` restarts per file."""
    fmt = tmp_path / "pipe.fmt"
    fmt.write_text("<Host>|<Content>\n")
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("x|hello\nnot a line\ny|again\n")
    b.write_text("z|world\n")
    table, stats = read_format([a, b], fmt)
    assert table.select("line_number", "file_line", "source", "Host").rows() == [
        (1, 1, str(a), "x"),
        (3, 3, str(a), "y"),
        (4, 1, str(b), "z"),
    ]
    assert stats.lines == 4 and stats.counts == {"malformed": 1}
    assert "timestamp" not in table.columns and "label" not in table.columns
