"""External test sets (--test), studies over K splits (--splits) with paired records, and proof that test
labels are never read before final scoring. Tiny simulated data and models, so seconds per run."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from logsieve.artifacts import sha256_path
from logsieve.cli import app
from logsieve.config import resolve_preset
from logsieve.data.load import DataInfo, load_data
from logsieve.data.splits import Splits
from logsieve.evaluation.evaluate import seen_mask
from logsieve.models.baselines import BASELINES, CountBaseline
from logsieve.simulator.simulate import simulate_sessions
from logsieve.table import write_sessions
from logsieve.training.runs import make_splits, train_run
from logsieve.training.study import baseline_run

runner = CliRunner()
SMALL = {"train": {"epochs": 2}, "data": {"max_len": 64}, "model": {"hidden_size": 8, "embed_dim": 4}}
TINY = ["--set", "train.epochs=2", "--set", "data.max_len=64", "--set", "model.hidden_size=8",
        "--set", "model.embed_dim=4", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory, simulated):
    """--data (the shared simulated table) and an external test file simulated with another seed."""
    folder = tmp_path_factory.mktemp("data")
    external = simulate_sessions(500, anomaly_rate=0.05, seed=99).select("session_id", "label", "events", "start_time")
    return write_sessions(simulated.head(1500), folder / "data.csv"), write_sessions(external, folder / "test.csv")


def test_train_scores_the_external_file_too_without_changing_the_run(tmp_path, files):
    data, test = files
    base = ["train", "--data", str(data), "--preset", "baseline", *TINY]
    plain = runner.invoke(app, [*base, "--out", str(tmp_path / "plain")])
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "ext"), "--test", str(test)])
    assert plain.exit_code == 0 and res.exit_code == 0, res.output
    assert "external test" in res.output
    metrics = json.loads((tmp_path / "ext" / "metrics.json").read_text())
    ext = metrics["external"]
    assert ext["n"] == 500 and ext["data"]["sha256"] == sha256_path(test)
    config = json.loads((tmp_path / "ext" / "config.json").read_text())
    assert config["data"]["sha256"] == sha256_path(data) and config["test_data"]["sha256"] == sha256_path(test)
    # unseen = external sessions whose exact sequence is not in the training split the model was fitted on
    cfg = resolve_preset("baseline", 0, SMALL)
    train = make_splits(load_data(data), cfg).train
    unseen = int((~seen_mask(train, load_data(test))).sum())
    assert 0 < unseen < 500 and ext["unseen"]["n"] == unseen
    # the own split is still scored, and the external file changes nothing the run learned
    before = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    for key in ("f1", "confusion", "threshold", "best_epoch"):
        assert metrics[key] == before[key], key
    assert untimed(metrics["validation"]) == untimed(before["validation"])
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in ("plain", "ext"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--test", "{data}"], "is the --data file itself"),
        (["--test-labels", "{test}"], "--test-labels needs --test"),
        (["--test", "{missing}"], "not found"),
        (["--splits", "2", "--set", "data.split=chronological"], "needs the random split"),
        (["--splits", "0"], "--splits must be at least 1"),
    ],
)
def test_bad_external_or_splits_is_one_line(tmp_path, files, args, needle):
    data, test = files
    fill = {"data": str(data), "test": str(test), "missing": str(tmp_path / "nope.csv")}
    res = runner.invoke(app, ["study", "--data", str(data), "--presets", "baseline", "--out", str(tmp_path / "s"),
                              *[a.format(**fill) for a in args], *TINY])  # fmt: skip
    assert res.exit_code == 2 and needle in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output and not (tmp_path / "s" / "results.csv").exists()


def test_study_over_splits_with_an_external_test_set(tmp_path, files):
    data, test = files
    out = tmp_path / "study"
    res = runner.invoke(app, ["study", "--data", str(data), "--presets", "baseline", "--seeds", "2", "--splits", "2",
                              "--test", str(test), "--out", str(out), "--jobs", "1", "--export", "best",
                              *TINY])  # fmt: skip
    assert res.exit_code == 0, res.output
    results = pl.read_csv(out / "results.csv")
    assert sorted(results["split"].unique()) == [0, 1]
    assert results.group_by("name").len()["len"].to_list() == [4] * results["name"].n_unique()  # 2 splits x 2 seeds
    assert results["f1_external"].is_not_null().all()
    for name in ("baseline", "decision-tree"):  # each run was fitted on its own split
        for split in (0, 1):
            config = json.loads((out / "runs" / name / f"split-{split}" / "seed-1" / "config.json").read_text())
            assert config["config"]["data"]["split_seed"] == split
    study = json.loads((out / "study.json").read_text())
    assert study["split_seeds"] == [0, 1] and study["test_data"]["sha256"] == sha256_path(test)
    paired = study["paired"]
    counts = results.filter(pl.col("kind").is_in(["baseline", "unsupervised"]))
    base = counts.group_by("name", maintain_order=True).agg(pl.col("val_f1").mean())
    assert base.filter(pl.col("name") == paired["reference"])["val_f1"][0] == pytest.approx(base["val_f1"].max())
    record = paired["models"]["baseline"]
    assert set(record) == {"f1", "f1_unseen", "f1_external", "f1_external_unseen"}
    ref = results.filter(pl.col("name") == paired["reference"]).sort("split", "seed")
    rnn = results.filter(pl.col("name") == "baseline").sort("split", "seed")
    wins = int((rnn["f1"] - ref["f1"] > 1e-9).sum())
    assert record["f1"]["wins"] == wins and sum(record["f1"][k] for k in ("wins", "ties", "losses")) == 4
    table = (out / "results.md").read_text()
    assert "F1 external unseen" in table and f"Paired record against {paired['reference']}" in table
    assert "2 random splits" in table
    # --export best finds its run under runs/<name>/split-<s>/seed-<k>
    assert (out / "bundle").is_dir()


def test_one_split_keeps_the_old_layout(tmp_path, files):
    data, _ = files
    out = tmp_path / "study"
    res = runner.invoke(app, ["study", "--data", str(data), "--presets", "baseline", "--out", str(out),
                              "--jobs", "1", *TINY])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "split" not in pl.read_csv(out / "results.csv").columns
    assert (out / "runs" / "baseline" / "seed-0" / "model.pt").exists()
    study = json.loads((out / "study.json").read_text())
    assert "paired" not in study and "test_data" not in study
    table = (out / "results.md").read_text()
    assert "Paired record" not in table and "external" not in table


# --- test labels are never read before final scoring ---------------------------------------------


def untimed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("score_seconds", "sessions_per_second")}


def poisoned(splits: Splits) -> Splits:
    """Every test label flipped: anything that read them before scoring would fit or cut differently."""
    return splits._replace(test=splits.test.with_columns(label=1 - pl.col("label")))


def test_poisoned_test_labels_change_no_threshold_epoch_or_weight(tmp_path, simulated):
    cfg = resolve_preset("improved", 3, {**SMALL, "train": {"epochs": 4}})  # threshold tuned on validation
    assert cfg.train.threshold == "tuned"
    splits = make_splits(simulated.head(1500), cfg)
    info = DataInfo.of(simulated, "sim", "0" * 64)
    clean = train_run(cfg, splits, tmp_path / "clean", info, progress=False)
    dirty = train_run(cfg, poisoned(splits), tmp_path / "dirty", info, progress=False)
    assert clean["confusion"] != dirty["confusion"]  # the poison reached the test metrics ...
    for key in ("threshold", "best_epoch", "epochs_run"):  # ... and nothing before them
        assert clean[key] == dirty[key], key
    assert untimed(clean["validation"]) == untimed(dirty["validation"])
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in ("clean", "dirty"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = [pl.read_csv(tmp_path / d / "history.csv").drop("seconds") for d in ("clean", "dirty")]
    assert history[0].equals(history[1])  # every epoch's losses and validation F1


@pytest.mark.parametrize("kind", BASELINES)
def test_poisoned_test_labels_change_no_baseline(tmp_path, simulated, kind):
    cfg = resolve_preset("baseline", 0, SMALL)
    splits = make_splits(simulated.head(1500), cfg)
    info = DataInfo.of(simulated, "sim", "0" * 64)
    clean = baseline_run(kind, 1, splits, tmp_path / "clean", info, cfg.data)
    dirty = baseline_run(kind, 1, poisoned(splits), tmp_path / "dirty", info, cfg.data)
    assert clean["confusion"] != dirty["confusion"]
    assert clean["threshold"] == dirty["threshold"]
    assert untimed(clean["validation"]) == untimed(dirty["validation"])
    a, b = (CountBaseline.load(tmp_path / d) for d in ("clean", "dirty"))
    both = pl.concat([splits.val, splits.test])
    assert np.array_equal(a.score(both), b.score(both))


def test_paired_records_pick_the_reference_by_validation_and_pair_by_split_and_seed():
    from logsieve.evaluation.comparison import paired_records

    def rows(name, kind, val_f1, f1, unseen):
        return [{"name": name, "kind": kind, "split": sp, "seed": sd, "val_f1": val_f1, "val_pr_auc": 0.9,
                 "f1": f1[i], "f1_unseen": unseen[i]}
                for i, (sp, sd) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)])]  # fmt: skip

    results = pl.DataFrame(
        rows("rnn", "rnn", 0.99, [0.9, 0.8, 0.7, 0.7], [0.5, None, 0.5, 0.5])
        + rows("tree", "baseline", 0.90, [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0])  # best on test, not validation
        + rows("pca", "unsupervised", 0.95, [0.8, 0.8, 0.8, 0.7], [0.4, 0.4, 0.6, 0.5]),
        infer_schema_length=None,
    )
    record = paired_records(results)
    assert record["reference"] == "pca" and record["paired_on"] == ["split", "seed"]
    assert record["models"]["rnn"]["f1"] == {"wins": 1, "ties": 2, "losses": 1, "sign_test_p": 1.0, "pairs": 4}
    unseen = record["models"]["rnn"]["f1_unseen"]  # the pair without a value is dropped
    assert (unseen["wins"], unseen["ties"], unseen["losses"], unseen["pairs"]) == (1, 1, 1, 3)
    assert record["models"]["tree"]["f1"]["wins"] == 4 and record["models"]["tree"]["f1"]["sign_test_p"] == 0.125
