"""Shared fixtures. Tests that need the public HDFS samples use ``shared_hdfs`` and skip cleanly without them."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]


LOGHUB_MISSING = "Loghub 2k samples not found: set LOGSIEVE_DATA or place them at ../shared/data/loghub2k"


def find_shared(folder: str, marker: str) -> Path | None:
    """$LOGSIEVE_DATA/<folder> (or $LOGSIEVE_DATA itself), else ../shared/data/<folder> next to the checkout: the
    first that holds ``marker``."""
    candidates = []
    if env := os.environ.get("LOGSIEVE_DATA"):
        candidates += [Path(env) / folder, Path(env)]
    candidates.append(REPO.parent / "shared" / "data" / folder)
    return next((c for c in candidates if (c / marker).exists()), None)


def find_shared_hdfs() -> Path | None:
    return find_shared("hdfs", "sessions_sample.csv.gz")


def loghub_sample(system: str) -> Path:
    """``<system>_2k.log`` of the Loghub 2k samples; skips the test without them."""
    root = find_shared("loghub2k", f"{system}/{system}_2k.log")
    if root is None:
        pytest.skip(LOGHUB_MISSING)
    return root / system / f"{system}_2k.log"


def session_table(rows: list[tuple[str, int]]) -> pl.DataFrame:
    """A session table from (space-separated events, label) rows, ids s0, s1, ..."""
    return pl.DataFrame(
        {"session_id": [f"s{i}" for i in range(len(rows))], "label": [r[1] for r in rows],
         "events": [r[0].split() for r in rows]},
        schema={"session_id": pl.String, "label": pl.Int8, "events": pl.List(pl.String)},
    )  # fmt: skip


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
