"""How close two session tables are: the figures the simulator is held to against the real HDFS sample."""

from __future__ import annotations

import numpy as np
import polars as pl

from logsieve.table import sequence_keys


def jsd(p: dict, q: dict) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]) between two count tables."""
    keys = sorted(set(p) | set(q))
    a = np.array([p.get(k, 0) for k in keys], float)
    b = np.array([q.get(k, 0) for k in keys], float)
    a, b = a / a.sum(), b / b.sum()
    m = (a + b) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return (kl(a) + kl(b)) / 2


def _counts(series: pl.Series) -> dict:
    vc = series.value_counts()
    return dict(zip(vc[:, 0].to_list(), vc[:, 1].to_list(), strict=True))


def length_bins(lengths: pl.Series) -> pl.Series:
    """Exact lengths up to 45, then one bin per doubling (the long tail is sparse)."""
    n = lengths.cast(pl.Int64)
    return pl.select(pl.when(n <= 45).then(n).otherwise(45 + (n / 45).log(2).floor() + 1)).to_series()


def _distinct_share(df: pl.DataFrame, n: int) -> float:
    return sequence_keys(df.sample(n, seed=0)["events"]).n_unique() / n


def compare_sessions(sim: pl.DataFrame, real: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Per class: JSD of event frequencies and of length histograms, length quantiles, share of distinct sequences.

    The distinct share falls as a table grows, so it is measured on equally large random samples of both.
    """
    out: dict[str, dict[str, float]] = {}
    for label, name in ((0, "normal"), (1, "anomaly")):
        s, r = sim.filter(pl.col("label") == label), real.filter(pl.col("label") == label)
        if s.height == 0 or r.height == 0:
            continue
        sl, rl = s["events"].list.len(), r["events"].list.len()
        out[name] = {
            "sessions": s.height,
            "event_jsd": jsd(_counts(s["events"].explode()), _counts(r["events"].explode())),
            "length_jsd": jsd(_counts(length_bins(sl)), _counts(length_bins(rl))),
            "length_median": _num(sl.median()), "length_median_real": _num(rl.median()),
            "length_p90": _num(sl.quantile(0.9)), "length_p90_real": _num(rl.quantile(0.9)),
            "distinct_share": _distinct_share(s, min(s.height, r.height)),
            "distinct_share_real": _distinct_share(r, min(s.height, r.height)),
        }  # fmt: skip
    out["all"] = {"anomaly_rate": _num(sim["label"].mean()), "anomaly_rate_real": _num(real["label"].mean())}
    return out


def _num(value: object) -> float:
    """A polars aggregate of a numeric column as a float (polars types it as any scalar)."""
    return float(value)  # type: ignore[arg-type]
