"""Augmentation: copies stay anomalous, normals and held-out splits are untouched."""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl

from logsieve.config import AugmentConfig, resolve_preset
from logsieve.data.splits import split_sessions
from logsieve.features.augment import augment, indicative_events, swapped_normals
from logsieve.training.detector import Detector


def test_augmented_rows_keep_labels_and_indicative_events(simulated):
    train, _, _ = split_sessions(simulated, seed=0)
    cfg = AugmentConfig(enabled=True, copies=3, swap_prob=1.0, drop_prob=1.0)
    out = augment(train, cfg, seed=0)
    assert out.head(train.height).equals(train)  # originals unchanged, in order
    extra = out.slice(train.height)
    n_anom = int(train["label"].sum())
    assert 0 < extra.height <= 3 * n_anom
    assert extra["label"].to_list() == [1] * extra.height
    keep = indicative_events(train)
    assert keep  # the simulator's anomalies have tell-tale events
    source = dict(zip(train["session_id"].to_list(), train["events"].to_list(), strict=True))
    normals = {tuple(e) for e in train.filter(pl.col("label") == 0)["events"].to_list()}
    changed = 0
    for sid, events in zip(extra["session_id"].to_list(), extra["events"].to_list(), strict=True):
        original = source[sid.split("#aug")[0]]
        before, after = Counter(original), Counter(events)
        assert all(after[e] == before[e] for e in keep)  # indicative events never removed
        assert set(after) == set(before)  # no event type disappears
        assert tuple(events) not in normals
        changed += events != original
    assert changed > extra.height // 2


def test_disabled_augmentation_is_identity(simulated):
    assert augment(simulated, AugmentConfig(enabled=False)) is simulated


def test_detector_with_augmentation_leaves_validation_and_test_untouched(simulated):
    train, val, test = split_sessions(simulated, seed=0)
    snapshot = (train.clone(), val.clone(), test.clone())
    cfg = resolve_preset(
        "improved-grid-da", overrides={"train": {"epochs": 1}, "model": {"hidden_size": 8}, "data": {"max_len": 64}}
    )
    det = Detector(cfg, progress=False).fit(train, val)
    assert det.n_train_sessions_ > train.height  # augmentation happened inside fit
    assert train.equals(snapshot[0]) and val.equals(snapshot[1]) and test.equals(snapshot[2])


def test_swapped_normal_copies_keep_counts_and_never_equal_an_anomaly():
    train = pl.DataFrame(
        {"session_id": ["n1", "n2", "n3", "a1"], "label": [0, 0, 0, 1],
         "events": [["A", "B", "C"], ["A", "A"], ["A", "B", "C"], ["B", "A", "C"]]},
        schema={"session_id": pl.String, "label": pl.Int8, "events": pl.List(pl.String)},
    )  # fmt: skip
    ids, seqs = swapped_normals(train, 20, np.random.default_rng(0))
    assert seqs and all(s == ["A", "C", "B"] for s in seqs)  # B<->A would equal the anomaly; "A A" cannot move
    assert all(i.startswith("n1#swap") for i in ids)  # distinct sequences only: n3 repeats n1
    out = augment(train, AugmentConfig(enabled=True, copies=0, normal_copies=20), seed=0)
    extra = out.slice(train.height)
    assert out.head(train.height).equals(train) and extra.height > 0
    assert (extra["label"] == 0).all() and all(s == ["A", "C", "B"] for s in extra["events"].to_list())
