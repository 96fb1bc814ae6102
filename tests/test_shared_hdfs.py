"""On the public HDFS sample (skipped when absent): a briefly trained `improved` reaches F1 >= 0.98."""

from __future__ import annotations

import json

import pytest
import torch

from logsieve.config import resolve_preset
from logsieve.data.load import DataInfo, load_data
from logsieve.training.runs import make_splits, train_run


@pytest.mark.slow
def test_improved_reaches_f1_098_on_the_public_sample(shared_hdfs, tmp_path):
    torch.set_num_threads(1)
    sessions = load_data(shared_hdfs / "sessions_sample.csv.gz")
    cfg = resolve_preset("improved", overrides={"train": {"epochs": 8}})
    metrics = train_run(cfg, make_splits(sessions, cfg), tmp_path / "run", DataInfo.of(sessions, "sample", "-"), False)
    assert metrics["n"] == 18_402  # the 20 % test split
    assert metrics["f1"] >= 0.98, metrics["confusion"]
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert stored["f1"] == pytest.approx(metrics["f1"])
