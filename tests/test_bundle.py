"""Bundles: every model kind exports and loads back scoring exactly as before; bad bundles fail in one line."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from typer.testing import CliRunner

from logsieve.artifacts import sha256_file
from logsieve.cli import app
from logsieve.config import preset_names, resolve_preset
from logsieve.data.load import DataInfo
from logsieve.errors import LogsieveError
from logsieve.evaluation.evaluate import evaluate_scorer
from logsieve.models.baselines import BASELINES, CountBaseline
from logsieve.serving.bundle import BundleWarning, export_bundle, load_bundle
from logsieve.training.detector import Detector
from logsieve.training.runs import make_splits, train_run
from logsieve.training.study import baseline_run

runner = CliRunner()
TINY = {"train": {"epochs": 1}, "data": {"max_len": 48},
        "model": {"hidden_size": 8, "embed_dim": 4, "head_hidden": 0}}  # fmt: skip


@pytest.fixture(scope="module")
def study(simulated, tmp_path_factory):
    """One small split and a lazily filled cache of run directories, one per model name."""
    df = simulated.head(500).select("session_id", "label", "events")
    splits = make_splits(df, resolve_preset("baseline", 0, TINY))
    info = DataInfo.of(df, "simulated", "0" * 64)
    root, runs = tmp_path_factory.mktemp("runs"), {}

    def run(name: str) -> Path:
        if name not in runs:
            out = root / name
            if name in BASELINES:
                baseline_run(name, 0, splits, out, info, resolve_preset("baseline").data)
            else:
                train_run(resolve_preset(name, 0, TINY), splits, out, info, progress=False)
            runs[name] = out
        return runs[name]

    return splits, run


# These presets differ from improved-grid(-bn) only in training (augmentation, clipping): same weights layout.
TRAINING_ONLY = {
    "improved-grid-da",
    "improved-grid-gc",
    "improved-grid-gn",
    "improved-grid-da-gn",
    "improved-grid-bn-gn",
}
MODELS = [pytest.param(n, marks=pytest.mark.slow) if n in TRAINING_ONLY else n for n in [*preset_names(), *BASELINES]]


def test_the_nine_presets_are_all_covered():
    assert len(preset_names()) == 9 and set(preset_names()) > TRAINING_ONLY


@pytest.mark.parametrize("name", MODELS)
def test_every_model_kind_round_trips(name, study, tmp_path):
    splits, run = study
    run_dir = run(name)
    bundle_dir = export_bundle(run_dir, tmp_path / "bundle")
    bundle = load_bundle(bundle_dir)
    test = splits.test
    if name in BASELINES:
        assert bundle.kind == name and bundle.manifest["truncation"] is None
        assert np.array_equal(bundle.model.score(test), CountBaseline.load(run_dir).score(test))
        assert {"model.skops", "baseline.json"} <= set(bundle.manifest["files"])
    else:
        assert bundle.kind == "rnn" and bundle.manifest["truncation"] == {"max_len": 48, "truncate": "head"}
        assert np.allclose(bundle.model.score(test), Detector.load(run_dir).score(test), rtol=0, atol=1e-6)
        assert "model.safetensors" in bundle.manifest["files"] and not (bundle_dir / "model.pt").exists()
    # the bundle reproduces the numbers the in-memory model recorded at training time
    stored = json.loads((run_dir / "metrics.json").read_text())
    assert evaluate_scorer(bundle.model, test)["confusion"] == stored["confusion"]
    assert (
        bundle.metrics["validation"]["f1"] == stored["validation"]["f1"]
        and bundle.metrics["test"]["f1"] == stored["f1"]
    )
    assert bundle.name == name and bundle.threshold == stored["threshold"]
    assert bundle.vocabulary == sorted(set(splits.train["events"].explode().to_list()))
    assert bundle.templates == "hdfs" and len(bundle.manifest["templates"]["templates"]) == 30
    normals = splits.train.filter(splits.train["label"] == 0)
    assert bundle.normal_profiles["sessions"].sum() == normals.height
    assert bundle.normal_profiles.height == normals["events"].list.sort().list.join(" ").n_unique()
    for file, entry in bundle.manifest["files"].items():
        assert sha256_file(bundle_dir / file) == entry["sha256"]
    versions = bundle.manifest["versions"]
    assert {"logsieve", "torch", "scikit-learn"} <= set(versions) and bundle.data["sha256"] == "0" * 64


# --- bad bundles: one clear line, in Python and through the CLI (exit 2, no traceback) ---------------


def _rewrite_manifest(bundle: Path, change) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _rehash(bundle: Path, name: str) -> None:
    """Make ``name`` consistent with the manifest again: a deliberate edit, not damage."""

    def fix(m):
        m["files"][name] = {"sha256": sha256_file(bundle / name), "bytes": (bundle / name).stat().st_size}

    _rewrite_manifest(bundle, fix)


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _point_outside(manifest: dict) -> None:
    manifest["files"]["../x"] = manifest["files"]["normals.json"]


def _foreign(bundle: Path) -> None:
    for p in bundle.iterdir():
        p.unlink()
    (bundle / "notes.txt").write_text("hello")


CASES = {
    "tampered weights": ("rnn", lambda b: _flip_byte(b / "model.safetensors"), "altered since export"),
    "tampered tree": ("tree", lambda b: _flip_byte(b / "model.skops"), "altered since export"),
    "truncated weights": ("rnn", lambda b: _truncate(b / "model.safetensors"), "truncated or altered"),
    "missing weights": ("tree", lambda b: (b / "model.skops").unlink(), "bundle file model.skops is missing"),
    "missing manifest": ("tree", lambda b: (b / "manifest.json").unlink(), "not a logsieve bundle (no manifest.json)"),
    "damaged manifest": ("tree", lambda b: (b / "manifest.json").write_text("{"), "bundle manifest is damaged"),
    "newer format": ("tree", lambda b: _rewrite_manifest(b, lambda m: m.update(format_version=99)),
                     "format version 99 is newer than this logsieve reads (2)"),
    "foreign manifest": ("tree", lambda b: (b / "manifest.json").write_text('{"name": "x"}'), "not a logsieve bundle"),
    "foreign directory": ("tree", _foreign, "not a logsieve bundle (no manifest.json)"),
    "path outside": ("tree", lambda b: _rewrite_manifest(b, _point_outside), "plain names inside the bundle"),
    "changed scores": ("rnn", lambda b: (_rewrite_self_check(b), _rehash(b, "self_check.json")),
                       "scores differ from those recorded at export"),
}  # fmt: skip


def _rewrite_self_check(bundle: Path) -> None:
    check = json.loads((bundle / "self_check.json").read_text())
    for row in check["probes"]:
        row["score"] = 1 - row["score"]
    (bundle / "self_check.json").write_text(json.dumps(check))


@pytest.fixture(scope="module")
def exported(study, tmp_path_factory):
    """Pristine bundles to copy: an RNN preset and the decision tree."""
    _, run = study
    root = tmp_path_factory.mktemp("bundles")
    return {
        "rnn": export_bundle(run("baseline"), root / "rnn"),
        "tree": export_bundle(run("decision-tree"), root / "tree"),
    }


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    return Path(shutil.copytree(src, dst))


@pytest.mark.parametrize("case", CASES)
def test_bad_bundles_fail_in_one_line(case, exported, tmp_path):
    which, damage, needle = CASES[case]
    bundle = _copy(exported[which], tmp_path / "b")
    damage(bundle)
    with pytest.raises(LogsieveError, match=None) as err:
        load_bundle(bundle)
    assert needle in str(err.value) and "\n" not in str(err.value)
    res = runner.invoke(app, ["verify", str(bundle)])
    assert res.exit_code == 2, res.output
    assert needle in " ".join(res.output.split()) and "Traceback" not in res.output


def test_a_run_directory_is_not_a_bundle(study):
    _, run = study
    with pytest.raises(LogsieveError, match="a run directory, not a bundle; make one with `logsieve export"):
        load_bundle(run("decision-tree"))


def test_other_library_versions_warn_when_scores_match_and_refuse_when_not(exported, tmp_path):
    bundle = _copy(exported["rnn"], tmp_path / "b")
    _rewrite_manifest(bundle, lambda m: m["versions"].update(torch="0.0.1"))
    with pytest.warns(BundleWarning, match=r"torch 0\.0\.1 -> .*self-check scores still match"):
        load_bundle(bundle)
    _rewrite_self_check(bundle)
    _rehash(bundle, "self_check.json")
    with pytest.raises(LogsieveError, match=r"scores differ .* \(bundle made with torch 0\.0\.1 -> "):
        load_bundle(bundle)
    tree = _copy(exported["tree"], tmp_path / "t")  # a baseline only cares about scikit-learn (and skops)
    _rewrite_manifest(tree, lambda m: m["versions"].update(torch="0.0.1"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_bundle(tree)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_skops_file_with_unexpected_types_is_refused(study, tmp_path):
    """The MLP's optimiser state is dropped on save; a file that holds it (or anything else) is refused."""
    from sklearn.neural_network import MLPClassifier

    _, run = study
    run_dir = _copy(run("count-mlp"), tmp_path / "run")
    assert sio.get_untrusted_types(file=run_dir / "model.skops") == []
    x = np.random.default_rng(0).random((20, 4))
    raw = MLPClassifier((3,), max_iter=3).fit(x, (x[:, 0] > 0.5).astype(int))  # keeps its Adam optimiser
    sio.dump(raw, run_dir / "model.skops", compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(
        LogsieveError, match="refusing to load types not expected in a count-mlp model: .*AdamOptimizer"
    ):
        CountBaseline.load(run_dir)


# --- export: through the CLI, templates, and refusing to clobber ------------------------------------


def test_export_cli_writes_a_bundle_that_verifies(study, tmp_path):
    _, run = study
    res = runner.invoke(app, ["export", "--model", str(run("decision-tree")), "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "decision-tree (decision-tree): validation F1" in res.output
    res = runner.invoke(app, ["verify", str(tmp_path / "b")])
    assert res.exit_code == 0 and "ok: decision-tree" in res.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left behind


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "{tmp}/none", "--out", "{tmp}/b"], "not a run directory"),
        (["--model", "{run}", "--out", "{tmp}/keep"], "exists and is not a bundle; refusing to replace it"),
        (["--model", "{run}", "--out", "{tmp}/b", "--templates", "{tmp}/missing.json"], "not found"),
        (["--model", "{run}", "--out", "{tmp}/b", "--templates", "{tmp}/keep/notes.txt"], "not a template miner state"),
    ],
)
def test_export_errors_are_one_line(study, tmp_path, args, needle):
    _, run = study
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    res = runner.invoke(app, ["export", *[a.format(tmp=tmp_path, run=run("decision-tree")) for a in args]])
    assert res.exit_code == 2 and needle in " ".join(res.output.split()) and "Traceback" not in res.output
    assert (tmp_path / "keep" / "notes.txt").read_text() == "mine" and not (tmp_path / "b").exists()


def test_miner_templates_travel_with_the_bundle(tmp_path):
    """A model trained on mined events ships the miner state; the HDFS set would not produce its events."""
    from logsieve.parsing.pipeline import parse_logs_report
    from logsieve.simulator.simulate import simulate_logs

    logs = simulate_logs(400, anomaly_rate=0.1, seed=5, out_dir=tmp_path / "logs")
    parsed = parse_logs_report([logs.log], labels=logs.labels, templates="mine")
    parsed.miner.save(tmp_path / "miner.json")
    df = parsed.sessions.select("session_id", "label", "events")
    splits = make_splits(df, resolve_preset("baseline"))
    baseline_run("logistic-regression", 0, splits, tmp_path / "run", DataInfo.of(df, "logs", "1" * 64),
                 resolve_preset("baseline").data)  # fmt: skip
    with pytest.raises(LogsieveError, match="the model knows events the templates hdfs never produce"):
        export_bundle(tmp_path / "run", tmp_path / "b")
    bundle = load_bundle(export_bundle(tmp_path / "run", tmp_path / "b", tmp_path / "miner.json"))
    assert bundle.templates == "miner" and bundle.miner_state is not None
    assert {c["id"] for c in bundle.miner_state["clusters"]} >= set(bundle.vocabulary)
    assert np.array_equal(bundle.model.score(splits.test), CountBaseline.load(tmp_path / "run").score(splits.test))
