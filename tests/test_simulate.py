"""The simulator: deterministic, valid, realistic against the public HDFS sample, and its logs parse back."""

from __future__ import annotations

import polars as pl
import pytest

from logsieve.data.realism import compare_sessions
from logsieve.data.sessions import load_session_csv, validate_sessions
from logsieve.data.simulate import simulate_sessions
from logsieve.errors import LogsieveError

N = 20_000


@pytest.fixture(scope="module")
def sim() -> pl.DataFrame:
    return simulate_sessions(N, anomaly_rate=0.03, seed=7)


def test_valid_table_with_start_time(sim):
    assert validate_sessions(sim).height == N
    assert sim["session_id"].n_unique() == N
    assert sim["session_id"].str.contains(r"^blk_-?\d+$").all()
    assert sim.schema["start_time"] == pl.Datetime("us")
    assert sim["start_time"].is_sorted()  # sessions come in order of their first line


def test_deterministic_and_seed_sensitive(sim):
    again = simulate_sessions(N, anomaly_rate=0.03, seed=7)
    assert again.equals(sim)
    other = simulate_sessions(N, anomaly_rate=0.03, seed=8)
    assert not other["events"].equals(sim["events"])


@pytest.mark.parametrize("rate", [0.0, 0.1, 1.0])
def test_anomaly_rate_as_asked(rate):
    df = simulate_sessions(2_000, anomaly_rate=rate, seed=1)
    assert df["label"].sum() == round(2_000 * rate)


@pytest.mark.parametrize("kwargs", [{"n_blocks": -1}, {"n_blocks": 0}, {"n_blocks": 2.5},
                                    {"anomaly_rate": -0.1}, {"anomaly_rate": 1.5}])  # fmt: skip
def test_bad_arguments_raise(kwargs):
    with pytest.raises(LogsieveError):
        simulate_sessions(**{"n_blocks": 10, **kwargs})


def test_anomalies_not_separable_by_one_event(sim):
    """Real anomalies include 'missing event' kinds: some anomalies consist only of events normals have too."""
    normal_events = set(sim.filter(pl.col("label") == 0)["events"].explode().unique())
    anomalies = sim.filter(pl.col("label") == 1)
    only_normal = anomalies["events"].list.eval(pl.element().is_in(normal_events)).list.all()
    assert only_normal.mean() > 0.15
    for event in anomalies["events"].explode().unique():  # no event present in every anomaly and no normal
        in_anom = anomalies["events"].list.contains(event).mean()
        assert not (in_anom == 1.0 and event not in normal_events)


def test_similar_to_real_sample(sim, shared_hdfs):
    real = load_session_csv(shared_hdfs / "sessions_sample.csv.gz")
    fig = compare_sessions(sim, real)
    for cls in ("normal", "anomaly"):
        f = fig[cls]
        assert f["event_jsd"] <= 0.1, (cls, f)
        assert f["length_jsd"] <= 0.15, (cls, f)
        assert abs(f["length_median"] - f["length_median_real"]) <= 2, (cls, f)
        assert abs(f["length_p90"] - f["length_p90_real"]) <= 0.25 * f["length_p90_real"], (cls, f)
    # duplication: few distinct sequences among normals (real ~5.7 % of 89 k; more sessions -> lower share)
    assert 0.01 <= fig["normal"]["distinct_share"] <= 0.15
    assert fig["anomaly"]["distinct_share"] > fig["normal"]["distinct_share"]
