"""DeepLog: learns from normal training sessions only, flags what it would not predict, persists and bundles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from conftest import session_table as table

from logsieve.artifacts import write_json
from logsieve.data.load import DataInfo
from logsieve.data.splits import split_sessions
from logsieve.errors import LogsieveError
from logsieve.evaluation.evaluate import evaluate_scorer
from logsieve.evaluation.metrics import classification_metrics
from logsieve.features.counts import normal_profiles, write_profiles
from logsieve.features.next_event import next_event_pairs
from logsieve.features.vocabulary import Vocabulary
from logsieve.models.deeplog import STATE, WEIGHTS, DeepLog, NextEventLSTM, weighted_cross_entropy
from logsieve.serving.bundle import export_bundle, load_bundle
from logsieve.training.runs import NORMALS

SMALL = {"hidden": 16, "layers": 1, "epochs": 2}  # for tests about data flow, not detection quality


@pytest.fixture(scope="module")
def split(simulated):
    train, val, test = split_sessions(simulated.select("session_id", "label", "events"), seed=0)
    return train, val, test


@pytest.fixture(scope="module")
def fitted(split):
    train, val, _ = split
    return DeepLog(seed=0, epochs=30).fit(train, val)  # 15 epochs are ~130 steps on this small split: too few


def test_fit_returns_self_and_never_reads_anomalous_training_sessions(split):
    train, val, _ = split
    model = DeepLog(seed=3, **SMALL)
    assert model.fit(train, val) is model
    # other events (even unknown ones) in the anomalous training sessions, or none of them: the same model
    scrambled = train.with_columns(
        events=pl.when(pl.col("label") == 1).then(pl.lit(["E99", "E5", "E98"])).otherwise(pl.col("events"))
    )
    for other_train in (scrambled, train.filter(pl.col("label") == 0)):
        other = DeepLog(seed=3, **SMALL).fit(other_train, val)
        assert other.vocab_.events_ == model.vocab_.events_ and other.g_ == model.g_
        mine, theirs = model.model_.state_dict(), other.model_.state_dict()
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    # ... while the normal ones do matter (the check above can fail)
    fewer = DeepLog(seed=3, **SMALL).fit(train.filter(pl.col("label") == 1).vstack(train.head(300)), val)
    assert not torch.equal(fewer.model_.state_dict()["out.bias"], model.model_.state_dict()["out.bias"])
    assert "E99" not in model.vocab_.events_
    assert model.n_parameters() == sum(p.numel() for p in model.model_.parameters())


def test_separates_anomalies_far_better_than_chance(fitted, split):
    _, _, test = split
    y = test["label"].to_numpy()
    scores = fitted.score(test)
    metrics = classification_metrics(y, scores, fitted.threshold_)
    assert metrics["f1"] > 0.9 and metrics["pr_auc"] > 0.9  # chance: PR-AUC ~0.05 at 5 % anomalies
    # beyond events never seen in training (a rule any model gets for free: F1 0.75 here) it learns the order
    known = test["events"].list.eval(pl.element().is_in(fitted.vocab_.events_)).list.all().to_numpy()
    assert (y[known] == 1).sum() >= 10 and (scores >= fitted.threshold_)[known & (y == 1)].mean() >= 0.75
    assert fitted.threshold_ == fitted.g_ / fitted.n_classes_ and 1 <= fitted.g_ <= fitted.n_classes_
    assert np.array_equal(fitted.predict(test), (fitted.score(test) >= fitted.threshold_).astype(np.int8))
    assert fitted.get_config()["g"] == fitted.g_ and fitted.fit_seconds_ > 0


def test_an_event_never_seen_in_normal_training_gives_the_maximum_score(fitted, split):
    _, _, test = split
    normal = test.filter(pl.col("label") == 0).head(20)
    assert (fitted.score(normal) < 1).all()
    odd = normal.with_columns(events=pl.col("events").list.concat(pl.lit(["E-never"])).list.reverse())
    assert (fitted.score(odd) == 1.0).all() and (fitted.predict(odd) == 1).all()
    # with g fixed at its largest value only such sessions are flagged
    strict = DeepLog(seed=0, top_g=10_000, **SMALL).fit(*split[:2])
    assert strict.g_ == strict.n_classes_ and strict.threshold_ == 1.0
    assert strict.predict(odd).all() and not strict.predict(normal).any()


def test_windows_are_start_padded_and_end_with_an_end_target():
    seqs = pl.Series([[5, 6, 7], [], [8]], dtype=pl.List(pl.Int64))
    pairs = next_event_pairs(seqs, window=2, start=0, end=-1)
    got = [(w.tolist(), int(t), int(o)) for w, t, o in zip(*pairs, strict=True)]
    assert got == [([0, 0], 5, 0), ([0, 5], 6, 0), ([5, 6], 7, 0), ([6, 7], -1, 0), ([0, 0], -1, 1),
                   ([0, 0], 8, 2), ([0, 8], -1, 2)]  # fmt: skip


def test_deduplicated_pairs_give_exactly_the_loss_of_every_pair_of_every_session():
    train = table([("E5 E5 E22 E11 E9", 0)] * 40 + [("E5 E22 E5 E11 E9 E26", 0)] * 7 + [("E5 E22", 0)] * 3)
    model = DeepLog(seed=0, window=3, hidden=8, layers=1)
    model.vocab_ = Vocabulary().fit(train["events"])
    x, y, w = model._pairs(train["events"])
    every = next_event_pairs(model.vocab_.encode(train["events"]), 3, 0, 0)  # no de-duplication at all
    assert len(y) < len(every.targets) / 10 and float(w.sum()) == len(every.targets)
    net = NextEventLSTM(len(model.vocab_), model.params())
    with torch.no_grad():
        merged = weighted_cross_entropy(net(x), y, w)
        windows, targets = torch.from_numpy(every.windows), torch.from_numpy(every.targets)
        expanded = torch.nn.functional.cross_entropy(net(windows), targets)
    assert float(merged) == pytest.approx(float(expanded), rel=1e-5)


def write_run(model: DeepLog, out: Path, train: pl.DataFrame, val: pl.DataFrame, test: pl.DataFrame) -> Path:
    """A DeepLog run directory as ``study.baseline_run`` writes one for a count baseline."""
    model.save(out)
    metrics = {**evaluate_scorer(model, test, train=train), "validation": evaluate_scorer(model, val)}
    info = DataInfo.of(train, "simulated", "0" * 64)
    write_json(out / "config.json", {"kind": model.kind, "name": model.kind, "config": model.get_config(),
                                     "seed": model.seed, "data": info.__dict__})  # fmt: skip
    write_json(out / "metrics.json", metrics)
    write_profiles(out / NORMALS, normal_profiles(train))
    return out


def test_save_load_and_bundle_round_trips_score_identically(fitted, split, tmp_path):
    train, val, test = split
    run = write_run(fitted, tmp_path / "run", train, val, test)
    loaded = DeepLog.load(run)
    assert np.array_equal(loaded.score(test), fitted.score(test)) and loaded.threshold_ == fitted.threshold_
    assert loaded.get_config() == fitted.get_config()
    bundle = load_bundle(export_bundle(run, tmp_path / "bundle"))
    assert bundle.kind == "deeplog" and bundle.manifest["truncation"] is None
    assert {WEIGHTS, STATE} <= set(bundle.manifest["files"]) and bundle.threshold == fitted.threshold_
    assert np.array_equal(bundle.model.score(test), fitted.score(test))
    assert bundle.metrics["test"]["f1"] == evaluate_scorer(bundle.model, test)["f1"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: "{not json",
        lambda s: json.dumps({k: v for k, v in s.items() if k != "g"}),
        lambda s: json.dumps({**s, "g": s["g"] + 1000}),
        lambda s: json.dumps({**s, "threshold": 0.5 + s["threshold"] / 3}),
        lambda s: json.dumps({**s, "params": {**s["params"], "window": 0}}),
        lambda s: json.dumps({**s, "params": {**s["params"], "hidden": 3}}),  # weights no longer fit
        lambda s: json.dumps({**s, "vocabulary": {"events": s["vocabulary"]["events"][:-1]}}),
        lambda s: json.dumps({**s, "kind": "pca"}),
    ],
)
def test_a_damaged_deeplog_state_is_one_clear_error(damage, fitted, tmp_path):
    fitted.save(tmp_path)
    state = json.loads((tmp_path / STATE).read_text())
    (tmp_path / STATE).write_text(damage(state))
    with pytest.raises(LogsieveError) as err:
        DeepLog.load(tmp_path)
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_truncated_weights_are_one_clear_error(fitted, tmp_path):
    fitted.save(tmp_path)
    (tmp_path / WEIGHTS).write_bytes((tmp_path / WEIGHTS).read_bytes()[:100])
    with pytest.raises(LogsieveError, match="weights are damaged"):
        DeepLog.load(tmp_path)


def test_g_comes_from_validation_and_test_labels_never_matter(fitted, split):
    train, val, test = split
    # g is the best-F1 cut on validation (then the smaller g), found here by brute force
    ranks, y = np.rint(fitted.score(val) * fitted.n_classes_), val["label"].to_numpy()
    f1 = [classification_metrics(y, (ranks >= g).astype(float), 0.5)["f1"] for g in range(1, fitted.n_classes_ + 1)]
    assert fitted.g_ == 1 + int(np.argmax(f1))
    # scoring never reads a label: flipped or missing test labels give the same scores
    for labels in (1 - test["label"], pl.Series([None] * test.height, dtype=pl.Int8)):
        assert np.array_equal(fitted.score(test.with_columns(label=labels)), fitted.score(test))


def test_bad_settings_and_data_are_one_clear_error(split):
    train, val, _ = split
    with pytest.raises(LogsieveError, match="window"):
        DeepLog(window=0).fit(train, val)
    with pytest.raises(LogsieveError, match="normal"):
        DeepLog().fit(train.filter(pl.col("label") == 1), val)
    with pytest.raises(LogsieveError, match="not fitted"):
        DeepLog().save("unused")
