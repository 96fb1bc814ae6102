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
TINY = [
    "--set",
    "train.epochs=2",
    "--set",
    "data.max_len=64",
    "--set",
    "model.hidden_size=8",
    "--set",
    "model.embed_dim=4",
    "--no-progress",
]


@pytest.fixture(scope="module")
def session_file(tmp_path_factory, simulated):
    return write_sessions(simulated.head(1500), tmp_path_factory.mktemp("data") / "sessions.csv")


def test_tiny_study_end_to_end(tmp_path, session_file):
    out = tmp_path / "study"
    res = runner.invoke(app, ["study", "--data", str(session_file), "--presets", "baseline,improved-grid-bn-gn",
                              "--seeds", "2", "--out", str(out), "--export", "best", *TINY])  # fmt: skip
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
    # every baseline leaves a run directory too, and every run its normal profiles: any model can be exported
    for name in ("decision-tree", "count-mlp"):
        tree = out / "runs" / name / "seed-1"
        for file in ("config.json", "metrics.json", "model.skops", "baseline.json", "normals.json"):
            assert (tree / file).exists(), (name, file)
        assert json.loads((tree / "config.json").read_text())["kind"] == name
        assert "f1" in json.loads((tree / "metrics.json").read_text())["validation"]
    assert (run / "normals.json").exists()
    # --export best: the run with the highest VALIDATION F1 (ties: PR-AUC, then fewer parameters)
    from logsieve.serving.bundle import load_bundle

    bundle = load_bundle(out / "bundle")
    ranked = results.sort(["val_f1", "val_pr_auc", "params"], descending=[True, True, False], maintain_order=True)
    best = ranked.row(0, named=True)
    assert (bundle.name, bundle.manifest["seed"]) == (best["name"], best["seed"])
    assert bundle.metrics["validation"]["f1"] == pytest.approx(results["val_f1"].max())
    assert f"bundle: {best['name']} seed {best['seed']}" in " ".join(res.output.split())


def test_pick_run_uses_validation_never_test_and_breaks_ties_by_pr_auc_then_size(tmp_path):
    from logsieve.training.study import pick_run

    results = pl.DataFrame({
        "name": ["improved", "improved", "decision-tree", "random-forest", "baseline"],
        "seed": [0, 1, 0, 0, 0],
        "f1": [0.99, 0.98, 0.90, 0.50, 1.0],  # test F1: must not matter
        "val_f1": [0.95, 0.97, 0.97, 0.97, 0.80],
        "val_pr_auc": [0.99, 0.96, 0.96, 0.96, 0.99],
        "params": [5000, 5000, 40, 900, 100],
    })  # fmt: skip
    assert pick_run(results, tmp_path)[0] == tmp_path / "runs" / "decision-tree" / "seed-0"
    assert pick_run(results, tmp_path, "improved")[0] == tmp_path / "runs" / "improved" / "seed-1"
    tie_on_f1 = results.with_columns(val_pr_auc=pl.Series([0.99, 0.99, 0.96, 0.96, 0.99]))
    assert pick_run(tie_on_f1, tmp_path)[0] == tmp_path / "runs" / "improved" / "seed-1"  # PR-AUC beats size


def test_export_choice_is_checked_before_training(tmp_path, session_file):
    res = runner.invoke(app, ["study", "--data", str(session_file), "--presets", "baseline", "--out",
                              str(tmp_path / "s"), "--export", "random-forest", "--no-baselines", *TINY])  # fmt: skip
    assert res.exit_code == 2 and "--export 'random-forest': not a model of this study" in " ".join(res.output.split())
    assert not (tmp_path / "s" / "runs").exists()


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
