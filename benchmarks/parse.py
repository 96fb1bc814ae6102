"""Throughput and peak memory of ``parse_logs`` (read + match + sessionize) on a full-size HDFS log.

The big input is built by replicating the public 2 % sample (222,579 real lines, 11,501 blocks) with rewritten
block ids (replica k: ``blk_[-]N`` -> ``blk_[-]kkN``) and times shifted by k * 2 days, so the file is in time
order like the real log; 50 replicas give 11.1 M lines and 575,050 blocks, the size of HDFS_v1 (11.2 M lines,
575,061 blocks). Each measurement runs in a fresh process (parse_logs uses threads, so its peak RSS is the
whole cost). CPU seconds are reported too: on a shared machine the wall time depends on what else runs
(the 1-minute load average is recorded), CPU time much less.

With ``--source simulate`` the input is instead ``logsieve simulate`` output of 575,061 blocks (HDFS_v1's count),
whose blocks interleave like the real log's but whose messages are less varied than real lines.

    python benchmarks/parse.py                       # known templates on 11.1 M lines, mining on 2.2 M
    python benchmarks/parse.py --replicas 5 --modes hdfs
    python benchmarks/parse.py --source simulate --modes hdfs,mine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def find_sample(data: str | None) -> Path:
    candidates = [Path(data)] if data else []
    if env := os.environ.get("LOGSIEVE_DATA"):
        candidates += [Path(env) / "hdfs", Path(env)]
    candidates.append(REPO.parent / "shared" / "data" / "hdfs")
    for c in candidates:
        if (c / "raw" / "hdfs_sample_2pct.log.gz").exists():
            return c / "raw" / "hdfs_sample_2pct.log.gz"
    sys.exit("benchmark needs raw/hdfs_sample_2pct.log.gz: pass --data DIR or set LOGSIEVE_DATA")


def build_log(sample: Path, replicas: int, out: Path) -> Path:
    """Replicate the sample ``replicas`` times with fresh block ids and later times (cached by name)."""
    import polars as pl

    if out.exists():
        return out
    ts = pl.col("line").str.slice(0, 13).str.strptime(pl.Datetime, "%y%m%d %H%M%S")
    df = pl.read_lines(sample).with_columns(ts=ts)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w") as f:
        for k in range(replicas):
            shifted = (pl.col("ts") + pl.duration(days=2 * k)).dt.strftime("%y%m%d %H%M%S")
            text = pl.concat_str(shifted, pl.col("line").str.slice(13))
            text = text.str.replace_all(r"blk_(-?)(\d)", f"blk_${{1}}{k:02d}${{2}}")
            f.write("\n".join(df.select(text).to_series().to_list()) + "\n")
    tmp.replace(out)
    return out


def simulate_log(blocks: int, out: Path) -> Path:
    """``logsieve simulate`` output (cached by folder name)."""
    from logsieve.simulator.simulate import simulate_logs

    if not (out / "HDFS.log").exists():
        simulate_logs(blocks, 0.029, 0, out)
    return out / "HDFS.log"


def measure(log: Path, mode: str) -> dict:
    """Run one parse in a fresh process and return its figures."""
    cmd = [sys.executable, __file__, "--child", str(log), "--modes", mode]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(log: Path, mode: str) -> None:
    from logsieve.parsing.pipeline import parse_logs_report

    start, cpu0 = time.perf_counter(), os.times()
    res = parse_logs_report([log], templates=mode)
    wall = time.perf_counter() - start
    cpu1 = os.times()
    cpu = (cpu1.user + cpu1.system + cpu1.children_user + cpu1.children_system) - (
        cpu0.user + cpu0.system + cpu0.children_user + cpu0.children_system
    )
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "mode": mode, "lines": res.stats.lines, "sessions": res.sessions.height, "rejected": res.stats.rejected,
        "wall_s": round(wall, 2), "lines_per_s": round(res.stats.lines / wall),
        "cpu_s": round(cpu, 2), "lines_per_cpu_s": round(res.stats.lines / cpu),
        "peak_rss_mib": round(own.ru_maxrss / 1024),
    }))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="folder holding raw/hdfs_sample_2pct.log.gz (default: ../shared/data/hdfs)")
    ap.add_argument("--replicas", type=int, default=50, help="copies of the 2 %% sample for known-template mode")
    ap.add_argument("--mine-replicas", type=int, default=10, help="copies for mining mode")
    ap.add_argument("--modes", default="hdfs,mine")
    ap.add_argument("--source", choices=("replicate", "simulate"), default="replicate")
    ap.add_argument("--blocks", type=int, default=575_061, help="blocks to simulate with --source simulate")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/logsieve-bench"), help="generated logs (not committed)")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "parse.json")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.modes)

    sample = find_sample(args.data) if args.source == "replicate" else None
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for mode in args.modes.split(","):
        replicas = args.replicas if mode == "hdfs" else args.mine_replicas
        t0 = time.perf_counter()
        if args.source == "simulate":
            log = simulate_log(args.blocks, args.workdir / f"simulated_{args.blocks}")
            source = f"logsieve simulate, {args.blocks:,} blocks, anomaly rate 0.029, seed 0"
        else:
            log = build_log(sample, replicas, args.workdir / f"hdfs_2pct_x{replicas}.log")
            source = f"2 % sample x {replicas} (replicated, rewritten block ids, times shifted)"
        print(f"input: {log} ({log.stat().st_size / 1e9:.2f} GB, built/cached in {time.perf_counter() - t0:.0f} s)")
        load = os.getloadavg()[0]
        r = measure(log, mode) | {"input": source,
                                  "bytes": log.stat().st_size, "load_avg_1min_before": round(load, 2),
                                  "load_avg_1min_after": round(os.getloadavg()[0], 2)}  # fmt: skip
        print(
            f"{mode:>5}: {r['lines']:,} lines -> {r['sessions']:,} sessions in {r['wall_s']} s = "
            f"{r['lines_per_s']:,} lines/s wall, {r['lines_per_cpu_s']:,} lines per CPU-second; "
            f"peak RSS {r['peak_rss_mib']:,} MiB (load {load:.1f} before, {r['load_avg_1min_after']} after)"
        )
        results.append(r)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "command": " ".join(sys.argv), "results": results}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
