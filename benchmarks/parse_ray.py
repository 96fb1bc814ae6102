"""Lines/s of ``parse --backend ray`` (Ray Data, local Ray of 1 and 2 worker CPUs) beside the local backend, on the
same simulated HDFS log, with a check that every backend gives the identical session table and reject statistics.

The input is ``logsieve simulate`` output (575,061 blocks by default: HDFS_v1's count, ~11.2 M lines), cached in
--workdir like benchmarks/parse.py does (``--source replicate`` uses parse.py's replicated 2 % sample instead).
Each measurement runs in a fresh process. For Ray, ``init_s`` (starting the local Ray) is reported apart from the
parse, and the parse runs twice: ``cold`` (worker processes start and import polars) and ``warm``. Wall time only:
Ray's workers are not children of the measuring process, so their CPU time is not visible from here.

    python benchmarks/parse_ray.py                      # full size: 575,061 blocks
    python benchmarks/parse_ray.py --blocks 50000       # ~1 M lines, a few minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parse import REPO, build_log, find_sample, simulate_log  # noqa: E402  (benchmarks/ is no package)


def measure(log: Path, backend: str, workers: int, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", str(log), "--backend", backend, "--workers", str(workers)]
    res = subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def child(log: Path, backend: str, workers: int, out: Path) -> None:
    from logsieve.table import write_sessions

    figures: dict = {"backend": backend, "workers": workers if backend == "ray" else None}
    if backend == "local":
        from logsieve.parsing.pipeline import parse_logs_report

        start = time.perf_counter()
        res = parse_logs_report([log])
        figures["wall_s"] = time.perf_counter() - start
    else:
        import ray

        from logsieve.parsing.distributed import parse_logs_ray

        start = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        figures["init_s"] = round(time.perf_counter() - start, 2)
        for run in ("cold", "warm"):
            start = time.perf_counter()
            res = parse_logs_ray([log])
            figures[f"{run}_s"] = time.perf_counter() - start
        figures["wall_s"] = figures["warm_s"]
        ray.shutdown()
    write_sessions(res.sessions, out)
    st = res.stats
    lines = st.lines
    for k in [k for k in figures if k.endswith("_s") and k != "init_s"]:
        figures[k] = round(figures[k], 2)
    figures |= {
        "lines": lines, "sessions": res.sessions.height, "lines_per_s": round(lines / figures["wall_s"]),
        "stats": {"counts": dict(st.counts), "unblocked": st.unblocked, "rejected": st.rejected},
    }  # fmt: skip
    print(json.dumps(figures))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", choices=("simulate", "replicate"), default="simulate")
    ap.add_argument("--blocks", type=int, default=575_061, help="blocks to simulate (HDFS_v1: 575,061)")
    ap.add_argument("--replicas", type=int, default=50, help="copies of the 2 %% sample with --source replicate")
    ap.add_argument("--data", help="folder holding raw/hdfs_sample_2pct.log.gz (--source replicate)")
    ap.add_argument("--workers", default="1,2", help="local Ray CPUs to measure")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/logsieve-bench"), help="generated logs (not committed)")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "parse_ray.json")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="local", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.backend, int(args.workers), args.out)

    import polars as pl
    from polars.testing import assert_frame_equal

    from logsieve.artifacts import write_json

    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.source == "simulate":
        log = simulate_log(args.blocks, args.workdir / f"simulated_{args.blocks}")
        source = f"logsieve simulate, {args.blocks:,} blocks, anomaly rate 0.029, seed 0"
    else:
        log = build_log(find_sample(args.data), args.replicas, args.workdir / f"hdfs_2pct_x{args.replicas}.log")
        source = f"2 % sample x {args.replicas} (replicated, rewritten block ids, times shifted)"
    print(f"input: {log} ({log.stat().st_size / 1e9:.2f} GB, built/cached in {time.perf_counter() - t0:.0f} s)")
    runs = [("local", 0)] + [("ray", int(w)) for w in args.workers.split(",")]
    results, reference = [], None
    for backend, workers in runs:
        out = args.workdir / f"parse_ray_{backend}_{workers}.parquet"
        load = os.getloadavg()[0]
        r = measure(log, backend, workers, out) | {"load_avg_1min_before": round(load, 2)}
        sessions = pl.read_parquet(out)
        if reference is None:
            reference = (sessions, r["stats"])
        else:
            assert_frame_equal(sessions, reference[0])  # identical session table, row order included
            assert r["stats"] == reference[1], (r["stats"], reference[1])
            r["identical_to_local"] = True
        out.unlink()
        extra = f" (init {r['init_s']} s, cold {r['cold_s']} s)" if backend == "ray" else ""
        print(
            f"{backend:>5} {workers or '':>2}: {r['lines']:,} lines -> {r['sessions']:,} sessions in {r['wall_s']} s = "
            f"{r['lines_per_s']:,} lines/s{extra}; load {load:.1f} before"
        )
        results.append(r)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    record = {"machine": machine, "command": " ".join(sys.argv), "input": source, "bytes": log.stat().st_size}
    write_json(args.json, record | {"results": results})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
