"""The demo is the first thing a new user runs: every stage, the bundle, and the fresh day's explained alerts."""

from __future__ import annotations

import json

import pytest

from logsieve.demo import run_demo


@pytest.mark.slow
def test_demo_trains_exports_and_explains_alerts_on_a_fresh_day(tmp_path):
    report = run_demo(tmp_path / "demo", blocks=3_000, anomaly_rate=0.05, seed=3, presets=("baseline",), progress=False)
    text = report.read_text()
    manifest = json.loads((tmp_path / "demo" / "bundle" / "manifest.json").read_text())
    assert manifest["name"] in text  # the exported model is the one the report names
    assert "(study/report.html)" in text and (tmp_path / "demo" / "study" / "report.html").is_file()  # the study page
    fresh = text.split("## A fresh day of logs, scored with the exported bundle")[1]
    assert "Against the simulator's labels: F1" in fresh
    assert "### Top 5 alerts" in fresh
    # every shown alert comes with its raw lines, read back from the new day's log by file:line
    assert fresh.count("**`blk_") == 5 and fresh.count("HDFS.log:") >= 5
    assert "decision path:" in fresh or "weighing events:" in fresh or "nearest normal" in fresh
    assert (tmp_path / "demo" / "new-day" / "HDFS.log").is_file()
