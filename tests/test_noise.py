"""Label-noise robustness: the flipping function and the study's noise table."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from logsieve.cli import app
from logsieve.data.splits import split_sessions
from logsieve.errors import LogsieveError
from logsieve.features.noise import flip_labels, noise_rates
from logsieve.table import write_sessions

runner = CliRunner()
TINY = ["--set", "train.epochs=2", "--set", "data.max_len=64", "--set", "model.hidden_size=8",
        "--set", "model.embed_dim=4", "--no-progress"]  # fmt: skip


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.05, 0.2, 1.0])
def test_flip_labels_flips_exactly_round_rate_n(simulated, rate):
    train = simulated.head(777)
    noisy = flip_labels(train, rate, seed=3)
    changed = (noisy["label"] != train["label"]).sum()
    assert changed == round(rate * train.height)
    assert noisy["session_id"].to_list() == train["session_id"].to_list()  # same sessions, same order
    assert set(noisy["label"].unique().to_list()) <= {0, 1} and noisy["label"].dtype == pl.Int8


def test_flip_labels_is_deterministic_by_seed(simulated):
    train = simulated.head(1000)
    flipped = lambda seed: set(train.filter(flip_labels(train, 0.1, seed)["label"] != train["label"])["session_id"])  # noqa: E731
    assert flipped(7) == flipped(7)
    assert flipped(7) != flipped(8)


def test_flip_labels_never_touches_validation_or_test(simulated):
    splits = split_sessions(simulated.head(1500), "random", 0.1, 0.2, 0)
    before_val, before_test = splits.val.clone(), splits.test.clone()
    noisy = splits._replace(train=flip_labels(splits.train, 0.3, 0))
    assert noisy.val.equals(before_val) and noisy.test.equals(before_test)
    assert (noisy.train["label"] != splits.train["label"]).sum() == round(0.3 * splits.train.height)


def test_noise_rates_are_checked():
    assert noise_rates(None) == [] and noise_rates("0, 0.01,0.05") == [0.0, 0.01, 0.05]
    for bad in ("x", "0,0", "1", "-0.1", ""):
        with pytest.raises(LogsieveError):
            noise_rates(bad)
    with pytest.raises(LogsieveError):
        flip_labels(pl.DataFrame({"label": [0]}), 1.5)


def test_tiny_study_with_label_noise(tmp_path, simulated):
    data = write_sessions(simulated.head(1200), tmp_path / "sessions.csv")
    out = tmp_path / "study"
    res = runner.invoke(app, ["study", "--data", str(data), "--presets", "baseline", "--out", str(out),
                              "--label-noise", "0,0.2", "--jobs", "1", *TINY])  # fmt: skip
    assert res.exit_code == 0, res.output
    record = json.loads((out / "study.json").read_text())["label_noise"]
    clean = pl.read_csv(out / "results.csv")
    assert {r["noise"] for r in record} == {0.0, 0.2}
    assert {r["name"] for r in record} == set(clean["name"])  # every preset and count model, at both rates
    for row in clean.iter_rows(named=True):
        at0 = next(r for r in record if r["name"] == row["name"] and r["noise"] == 0.0)
        assert at0["f1"] == pytest.approx(row["f1"])  # rate 0 is the clean run
    f1 = {(r["name"], r["noise"]): r["f1"] for r in record}
    assert any(f1[name, 0.0] != f1[name, 0.2] for name in clean["name"])  # the noisy runs really retrained
    table = (out / "results.md").read_text()
    assert "## Label noise" in table and "F1 @ 0.2" in table and "F1 unseen @ 0" in table
    # noisy runs live beside the clean ones, never over them
    for name in ("baseline", "decision-tree"):
        assert (out / "runs" / name / "seed-0" / "metrics.json").exists()
        assert (out / "runs" / name / "noise-0.2" / "seed-0" / "metrics.json").exists()
    noisy_tree = json.loads((out / "runs" / "decision-tree" / "noise-0.2" / "seed-0" / "metrics.json").read_text())
    at02 = next(r for r in record if r["name"] == "decision-tree" and r["noise"] == 0.2)
    assert at02["f1"] == pytest.approx(noisy_tree["f1"])


def test_label_noise_with_splits_is_refused(tmp_path, simulated):
    data = write_sessions(simulated.head(300), tmp_path / "sessions.csv")
    res = runner.invoke(app, ["study", "--data", str(data), "--out", str(tmp_path / "o"), "--splits", "2",
                              "--label-noise", "0.1", *TINY])  # fmt: skip
    assert res.exit_code == 2 and "--label-noise" in res.output
