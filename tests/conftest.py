"""Shared fixtures. Tests that need the public HDFS samples use ``shared_hdfs`` and skip cleanly without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_shared_hdfs() -> Path | None:
    """$LOGSIEVE_DATA (the folder holding hdfs/, or hdfs/ itself), else ../shared/data/hdfs next to the checkout."""
    candidates = []
    if env := os.environ.get("LOGSIEVE_DATA"):
        candidates += [Path(env) / "hdfs", Path(env)]
    candidates.append(REPO.parent / "shared" / "data" / "hdfs")
    for c in candidates:
        if (c / "sessions_sample.csv.gz").exists():
            return c
    return None


@pytest.fixture(scope="session")
def shared_hdfs() -> Path:
    path = find_shared_hdfs()
    if path is None:
        pytest.skip("public HDFS samples not found: set LOGSIEVE_DATA or place them at ../shared/data/hdfs")
    return path


@pytest.fixture(scope="session")
def simulated():
    """A small labelled session table from logsieve's own simulator (no external data needed)."""
    from logsieve.simulator.simulate import simulate_sessions

    return simulate_sessions(3000, anomaly_rate=0.05, seed=7).select("session_id", "label", "events", "start_time")
