"""A search stopped with Ctrl-C (SIGINT) or SIGTERM writes trials.csv and a best-so-far search_result.json,
says how many trials are done and that the same command resumes; the rerun completes the grid."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import polars as pl
import pytest

from logsieve.table import write_sessions

FAST = ["--set", "model.embed_dim=4", "--set", "data.max_len=64", "--epochs", "4", "--patience", "4"]
GRID, POINTS = "[params]\nhidden_size = [4, 8]\nlr = [0.003, 0.01]\nbatch_size = [32, 64]\n", 8


@pytest.fixture(scope="module")
def session_file(tmp_path_factory, simulated):
    return write_sessions(simulated.head(1200), tmp_path_factory.mktemp("data") / "sessions.csv")


def trial_states(db: Path) -> list[str]:
    """Read-only peek: opening an optuna storage would write its schema."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as con:
            return [state for (state,) in con.execute("SELECT state FROM trials")]
    except sqlite3.Error:
        return []


def _search(args: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "logsieve.cli", "search", *args]
    return subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(("sig", "group"), [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_stopped_search_reports_and_resumes(tmp_path, session_file, sig, group):
    """SIGINT to the process group is a terminal's Ctrl-C; SIGTERM to the parent alone is `kill PID`."""
    out, space = tmp_path / "search", tmp_path / "space.toml"
    space.write_text(GRID)
    args = ["--data", str(session_file), "--space", str(space), "--jobs", "2", "--out", str(out),
            "--pruner", "none", *FAST]  # fmt: skip
    proc = _search(args)
    deadline, states = time.monotonic() + 120, []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            states = trial_states(out / "study.db")
            if states.count("COMPLETE") >= 1 and len(states) < POINTS:
                break
        assert proc.poll() is None, f"search ended before the signal: {proc.stderr.read()}"
        (os.killpg if group else os.kill)(proc.pid, sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    said = " ".join(stderr.split())
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "search interrupted:" in said and "Run the same command again to resume" in said
    done = int(said.split("search interrupted: ")[1].split(" ")[0])
    trials = pl.read_csv(out / "trials.csv")
    assert done >= 1 and trials.filter(pl.col("state") == "COMPLETE").height == done
    result = json.loads((out / "search_result.json").read_text())
    assert result["trials"]["complete"] == done < POINTS
    best = trials.filter(pl.col("state") == "COMPLETE").sort("val_f1", descending=True).row(0, named=True)
    assert result["val_f1"] == pytest.approx(best["val_f1"])
    # the same command again finishes the grid: every point once
    rerun = subprocess.run([sys.executable, "-m", "logsieve.cli", "search", *args], capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    optuna_study = optuna.load_study(study_name="logsieve", storage=f"sqlite:///{out / 'study.db'}")
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    points = Counter(tuple(sorted(t.params.items())) for t in optuna_study.get_trials(states=finished))
    assert len(points) == POINTS and set(points.values()) == {1}
    assert json.loads((out / "search_result.json").read_text())["trials"]["complete"] == POINTS


def test_search_refuses_a_test_set(tmp_path, session_file):
    """A search tunes on validation only; --test is refused with one line before anything is written."""
    from typer.testing import CliRunner

    from logsieve.cli import app

    res = CliRunner().invoke(app, ["search", "--data", str(session_file), "--test", str(session_file),
                                   "--out", str(tmp_path / "s")])  # fmt: skip
    assert res.exit_code == 2 and "never looks at a test set" in " ".join(res.output.split())
    assert not (tmp_path / "s").exists()
