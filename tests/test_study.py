"""A tiny end-to-end study through the CLI, on data logsieve generates itself (seconds)."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from logsieve.cli import app
from logsieve.table import write_sessions

runner = CliRunner()
TINY = ["--set", "train.epochs=2", "--set", "data.max_len=64", "--set", "model.hidden_size=8", "--set", "model.embed_dim=4", "--no-progress"]


@pytest.fixture(scope="module")
def session_file(tmp_path_factory, simulated):
    return write_sessions(simulated.head(1500), tmp_path_factory.mktemp("data") / "sessions.csv")


def test_tiny_study_end_to_end(tmp_path, session_file):
    out = tmp_path / "study"
    res = runner.invoke(app, ["study", "--data", str(session_file), "--presets", "baseline,improved-grid-bn-gn",
                              "--seeds", "2", "--out", str(out), *TINY])  # fmt: skip
    assert res.exit_code == 0, res.output
    results = pl.read_csv(out / "results.csv")
    assert results.filter(pl.col("kind") == "rnn").height == 4
    assert set(results["name"]) >= {"baseline", "improved-grid-bn-gn", "decision-tree", "random-forest"}
    table = (out / "results.md").read_text()
    assert "improved-grid-bn-gn" in table and "±" in table  # mean ± sd over the two seeds
    conflicts = json.loads((out / "study.json").read_text())["label_conflicts"]
    assert 0 < conflicts["counts"]["f1_ceiling"] <= 1 and f"ceiling {conflicts['sequence']['f1_ceiling']:.4f}" in table
    run = out / "runs" / "improved-grid-bn-gn" / "seed-1"
    for name in ("config.json", "metrics.json", "history.csv", "curve.png", "model.pt", "detector.json"):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 1 and len(config["data"]["sha256"]) == 64 and "torch" in config["versions"]
    assert config["config"]["model"]["batch_norm"] is True and config["config"]["train"]["clip"] == "norm"
    state = torch.load(run / "model.pt", weights_only=True)
    assert any(k.startswith("norm.") for k in state)
    assert not list(out.rglob("*.tmp"))  # nothing half-written


def test_train_then_evaluate_reproduces_test_metrics(tmp_path, session_file):
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", "--data", str(session_file), "--preset", "improved", "--out", str(run), *TINY])
    assert res.exit_code == 0, res.output
    stored = json.loads((run / "metrics.json").read_text())
    res = runner.invoke(app, ["evaluate", "--model", str(run), "--data", str(session_file), "--split", "test",
                              "--out", str(tmp_path / "m.json")])  # fmt: skip
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "m.json").read_text())
    assert again["confusion"] == stored["confusion"] and again["f1"] == pytest.approx(stored["f1"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--data", "missing.csv", "--out", "x"], "file not found"),
        (["train", "--data", "{data}", "--out", "x", "--preset", "nope"], "unknown preset 'nope'"),
        (["train", "--data", "{data}", "--out", "x", "--set", "model.cell=transformer"], "invalid configuration"),
        (["train", "--data", "{data}", "--out", "x", "--set", "model.colour=3"], "invalid configuration"),
        (["evaluate", "--model", "{tmp}", "--data", "{data}"], "not a logsieve run directory"),
    ],
)
def test_user_errors_are_one_line(tmp_path, session_file, args, needle):
    args = [a.format(data=session_file, tmp=tmp_path) for a in args]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert needle in res.output and "Traceback" not in res.output


def test_one_class_data_is_refused(tmp_path, simulated):
    path = write_sessions(simulated.filter(pl.col("label") == 0).head(200), tmp_path / "normal.csv")
    res = runner.invoke(app, ["train", "--data", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "only one class" in res.output
    assert not (tmp_path / "o").exists()


def test_presets_lists_all_nine():
    res = runner.invoke(app, ["presets"])
    assert res.exit_code == 0
    for name in ("baseline", "improved", "improved-grid", "improved-grid-bn", "improved-grid-da", "improved-grid-gc",
                 "improved-grid-gn", "improved-grid-da-gn", "improved-grid-bn-gn"):  # fmt: skip
        assert name in res.output
    assert "counts" in res.output


def test_train_on_raw_logs_with_chronological_split(tmp_path):
    """--data accepts raw HDFS logs; their start times allow training on the past, testing on the future."""
    from logsieve.simulator.simulate import simulate_logs

    logs = simulate_logs(1500, anomaly_rate=0.05, seed=3, out_dir=tmp_path / "logs")
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", "--data", str(logs.log), "--labels", str(logs.labels), "--preset", "baseline",
                              "--set", "data.split=chronological", "--out", str(run), *TINY])  # fmt: skip
    assert res.exit_code == 0, res.output
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["sessions"] == 1500 and config["config"]["data"]["split"] == "chronological"
    assert config["splits"]["test"]["sessions"] == 300


def test_chronological_split_needs_start_times(tmp_path, session_file):
    res = runner.invoke(app, ["train", "--data", str(session_file), "--set", "data.split=chronological",
                              "--out", str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 2 and "start_time" in res.output
