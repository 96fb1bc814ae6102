"""Simulator speed at full HDFS_v1 size, and how close its sessions are to the real public sample.

Times ``simulate_logs`` (575,061 blocks, 2.93 % anomalous: ~11 M lines) end to end, then compares the sessions of the
same seed with ``sessions_sample.csv.gz`` (JSD of event frequencies and length histograms per class, quantiles,
duplication) when the shared data is present ($LOGSIEVE_DATA or ../shared/data/hdfs).

    /work/venv/bin/python benchmarks/simulate.py [--blocks 575061] [--anomaly-rate 0.02928] [--seed 0]
        [--out DIR (default: a temp dir, deleted)] [--json benchmarks/results/simulate.json]

The default rate is HDFS_v1's own, 16,838 / 575,061.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from logsieve.data.load import load_session_csv
from logsieve.simulator.realism import compare_sessions
from logsieve.simulator.simulate import simulate_logs, simulate_sessions

REPO = Path(__file__).resolve().parents[1]
HDFS_V1 = {"blocks": 575_061, "lines": 11_175_629, "anomalies": 16_838}


def shared_sample() -> Path | None:
    env = os.environ.get("LOGSIEVE_DATA")
    for c in ([Path(env) / "hdfs", Path(env)] if env else []) + [REPO.parent / "shared" / "data" / "hdfs"]:
        if (c / "sessions_sample.csv.gz").exists():
            return c / "sessions_sample.csv.gz"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=HDFS_V1["blocks"])
    ap.add_argument("--anomaly-rate", type=float, default=HDFS_V1["anomalies"] / HDFS_V1["blocks"])  # 2.93 %
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="Keep the logs here (default: temp dir, deleted).")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "simulate.json")
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="logsieve-sim-"))
    try:
        start = time.perf_counter()
        res = simulate_logs(args.blocks, args.anomaly_rate, args.seed, out)
        seconds = time.perf_counter() - start
        size = res.log.stat().st_size
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    result = {
        "command": f"/work/venv/bin/python benchmarks/simulate.py --blocks {args.blocks} "
                   f"--anomaly-rate {args.anomaly_rate} --seed {args.seed}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "blocks": res.blocks, "anomalies": res.anomalies, "lines": res.lines, "log_bytes": size,
        "seconds": round(seconds, 2), "lines_per_second": round(res.lines / seconds),
        "lines_per_block": round(res.lines / res.blocks, 3),
        "lines_per_block_hdfs_v1": round(HDFS_V1["lines"] / HDFS_V1["blocks"], 3),
    }  # fmt: skip
    print(f"simulate_logs: {res.blocks:,} blocks, {res.lines:,} lines, {size / 1e9:.2f} GB in {seconds:.1f} s "
          f"= {res.lines / seconds:,.0f} lines/s ({os.cpu_count()} cores)")  # fmt: skip
    if sample := shared_sample():
        sim = simulate_sessions(args.blocks, args.anomaly_rate, args.seed)
        figures = compare_sessions(sim, load_session_csv(sample))
        result["vs_real_sample"] = figures
        for cls in ("normal", "anomaly"):
            f = figures[cls]
            print(
                f"{cls:>8}: event JSD {f['event_jsd']:.4f}  length JSD {f['length_jsd']:.4f}  "
                f"median {f['length_median']:.0f} (real {f['length_median_real']:.0f})  "
                f"p90 {f['length_p90']:.0f} (real {f['length_p90_real']:.0f})  "
                f"distinct {100 * f['distinct_share']:.1f} % (real {100 * f['distinct_share_real']:.1f} %)"
            )
    else:
        print("real sample not found: similarity figures skipped")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {args.json}")


if __name__ == "__main__":
    main()
