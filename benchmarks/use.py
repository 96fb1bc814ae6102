"""Throughput of putting a trained model to work: ``score`` here; ``watch`` and ``serve`` join as ``bench_watch`` /
``bench_serve`` (add a function and a PARTS entry; each part writes its own key of results/use.json).

score, session files: sessions/s of what ``logsieve score FILE --out X.csv`` does after start-up (read the file,
score, write), in a fresh process per measurement, best of ``--repeats``; start-up (imports, bundle load) is
reported apart. Files: the public 92k-session sample (6,004 distinct sequences), and ``--distinct`` sessions
whose sequences are all distinct (sample sessions drawn at random, each changed by 1-5 random edits — swap two
neighbours, repeat or drop an event — and kept only if new), which defeats the score-each-distinct-sequence-once
shortcut of ``score_table``.
Bundles: the decision tree and ``improved-grid`` RNN, trained on the sample's own split (the RNN for
``--rnn-epochs``, 1 by default: scoring speed depends on the architecture, not on the weights), or given ones.

score, raw logs: lines/s and peak RSS of the whole ``logsieve score --model TREE HDFS.log --out X.parquet``
process on ``logsieve simulate`` output (575,061 blocks ≈ 11 M lines is HDFS_v1's size).

    python benchmarks/use.py --parts score --raw-blocks 20000          # quick check
    python benchmarks/use.py --parts score --raw-blocks 575061         # the full-size run

watch: lines/s and peak RSS of the whole ``logsieve watch --once --model TREE HDFS.log --out X.jsonl`` process
on ``logsieve simulate`` output (``--watch-blocks``, full size by default), and whether its alerts equal those
of ``logsieve score`` on the same log.

    python benchmarks/use.py --parts watch --watch-blocks 20000        # quick check
    python benchmarks/use.py --parts watch                             # 575,061 blocks, ~11 M lines

serve: a real ``logsieve serve`` (own process, 127.0.0.1 only, a free port) answering httpx clients from
``--serve-clients`` threads: p50/p99 latency and requests/s for 1-session and 1,000-session requests, then a
mixed load of ``--serve-requests`` good and bad requests that must get no 5xx and exactly the expected 4xx for
every bad one. The bundle is ``--tree-bundle`` or a decision tree trained on simulated sessions (no shared data
needed; the cheapest model, so the figures are mostly the service's own cost). Client and server share the cores.

    python benchmarks/use.py --parts serve --serve-quick --json /tmp/use-serve.json   # small check (~20 s)
    python benchmarks/use.py --parts serve                                            # 10,000-request load
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"sessions_per_s": 200_000, "lines_per_s": 500_000}
SERVE_HOST = "127.0.0.1"  # the serve benchmark never leaves this machine


def find_sample(data: str | None) -> Path:
    candidates = [Path(data)] if data else []
    if env := os.environ.get("LOGSIEVE_DATA"):
        candidates += [Path(env) / "hdfs", Path(env)]
    candidates.append(REPO.parent / "shared" / "data" / "hdfs")
    for c in candidates:
        if (c / "sessions_sample.csv.gz").exists():
            return c / "sessions_sample.csv.gz"
    sys.exit("benchmark needs sessions_sample.csv.gz: pass --data DIR or set LOGSIEVE_DATA")


# --- inputs and bundles (cached in --workdir) ----------------------------------------------------------------


def distinct_file(sample: Path, n: int, out: Path, seed: int = 0) -> Path:
    """n sessions, every sequence distinct: sample sessions drawn at random, each changed by 1-5 random edits
    (swap two neighbours, repeat an event, drop an event), kept only if new."""
    if out.exists():
        return out
    import numpy as np
    import polars as pl

    from logsieve.data.load import load_data

    base = load_data(sample)["events"].to_list()
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    for _ in range(50 * n):  # bounded: a tiny sample may not have n variants
        ev = list(base[int(rng.integers(0, len(base)))])
        for _ in range(int(rng.integers(1, 6))):
            i = int(rng.integers(0, len(ev)))
            edit = int(rng.integers(0, 3))
            if edit == 0 and len(ev) > 1:
                j = min(i + 1, len(ev) - 1)
                ev[i], ev[j] = ev[j], ev[i]
            elif edit == 1:
                ev.insert(i, ev[i])
            elif len(ev) > 1:
                del ev[i]
        seen.add(" ".join(ev))
        if len(seen) == n:
            break
    rows = sorted(seen, key=lambda _: rng.random())
    tmp = out.with_name(out.name + ".tmp")
    pl.DataFrame({"session_id": [f"d{i}" for i in range(len(rows))], "events": rows}).write_csv(tmp)
    tmp.replace(out)
    return out


def build_bundles(sample: Path, workdir: Path, rnn_epochs: int) -> dict[str, Path]:
    """Tree and improved-grid bundles trained on the sample's split (cached by folder name)."""
    from logsieve.config import resolve_preset
    from logsieve.data.load import load_with_info
    from logsieve.serving.bundle import export_bundle
    from logsieve.training.runs import make_splits, train_run
    from logsieve.training.study import baseline_run

    out = {"tree": workdir / "bundle-tree", "rnn": workdir / f"bundle-improved-grid-{rnn_epochs}ep"}
    if all(p.exists() for p in out.values()):
        return out
    import torch

    torch.set_num_threads(1)
    sessions, info = load_with_info(sample)
    cfg = resolve_preset("improved-grid", overrides={"train": {"epochs": rnn_epochs}})
    splits = make_splits(sessions, cfg, sample)
    if not out["tree"].exists():
        baseline_run("decision-tree", 0, splits, workdir / "run-tree", info, cfg.data)
        export_bundle(workdir / "run-tree", out["tree"])
    if not out["rnn"].exists():
        train_run(cfg, splits, workdir / f"run-rnn-{rnn_epochs}ep", info, progress=False)
        export_bundle(workdir / f"run-rnn-{rnn_epochs}ep", out["rnn"])
    return out


def simulated_log(blocks: int, workdir: Path) -> tuple[Path, int]:
    """``logsieve simulate`` output of ``blocks`` blocks and its line count (cached)."""
    from logsieve.simulator.simulate import simulate_logs

    folder = workdir / f"simulated_{blocks}"
    log = folder / "HDFS.log"
    if not log.exists():
        simulate_logs(blocks, 0.029, 0, folder)
    lines = 0
    with open(log, "rb") as f:
        while block := f.read(1 << 24):
            lines += block.count(b"\n")
    return log, lines


# --- measurements ---------------------------------------------------------------------------------------------


def run_child(cmd: list[str]) -> tuple[float, int, str, str]:
    """(wall seconds, peak RSS MiB, stdout, stderr) of a command in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    peak = _peak_rss_mib(err)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    return wall, peak, out, err


def _peak_rss_mib(stderr: str) -> int:
    found = re.findall(r"^PEAK_RSS_KIB (\d+)$", stderr, flags=re.M)
    return round(int(found[-1]) / 1024) if found else -1


def child_score(bundle: Path, data: Path, out: Path, repeats: int, threads: int) -> None:
    """In a fresh process: start-up, then ``repeats`` runs of the score command's work; prints JSON."""
    t0 = time.perf_counter()
    import torch

    from logsieve.serving.bundle import load_bundle
    from logsieve.serving.output import write_scores
    from logsieve.serving.scoring import score_inputs

    torch.set_num_threads(threads)
    bundle_obj = load_bundle(bundle)
    startup = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        res = score_inputs(bundle_obj, [data])
        scored = time.perf_counter()
        write_scores(res.table, out)
        runs.append((time.perf_counter() - start, scored - start, res.table.height, int(res.alert.sum())))
    best = min(runs)
    import resource

    figures = {"startup_s": round(startup, 2), "seconds": round(best[0], 3), "score_s": round(best[1], 3),
               "sessions": best[2], "alerts": best[3], "all_runs_s": [round(r[0], 3) for r in runs]}  # fmt: skip
    print(json.dumps(figures))
    print(f"PEAK_RSS_KIB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)


def bench_score(args: argparse.Namespace) -> dict[str, Any]:
    """Session files x bundles, then raw logs end to end."""
    sample = find_sample(args.data)
    args.workdir.mkdir(parents=True, exist_ok=True)
    bundles = {"tree": args.tree_bundle, "rnn": args.rnn_bundle}
    if None in bundles.values():
        built = build_bundles(sample, args.workdir, args.rnn_epochs)
        bundles = {k: v or built[k] for k, v in bundles.items()}
    distinct = distinct_file(sample, args.distinct, args.workdir / f"distinct_{args.distinct}.csv")
    files = {"sample": sample, "distinct": distinct}
    results: dict[str, Any] = {"session_files": [], "raw": None}
    for (fname, path), (bname, bundle) in ((f, b) for f in files.items() for b in bundles.items()):
        cmd = [sys.executable, __file__, "--child-score", str(bundle), str(path), str(args.workdir / "scores.csv"),
               "--repeats", str(args.repeats), "--threads", str(args.threads)]  # fmt: skip
        _, peak, out, _ = run_child(cmd)
        r = json.loads(out.strip().splitlines()[-1]) | {"file": fname, "bundle": bname, "peak_rss_mib": peak}
        r["sessions_per_s"] = round(r["sessions"] / r["seconds"])
        results["session_files"].append(r)
        print(
            f"score {fname:>8} ({r['sessions']:,} sessions) with {bname:>4}: {r['sessions_per_s']:>9,} sessions/s "
            f"({r['seconds']} s: score {r['score_s']} s + write; start-up {r['startup_s']} s; peak RSS {peak} MiB)"
        )
    if args.raw_blocks:
        log, lines = simulated_log(args.raw_blocks, args.workdir)
        out = args.workdir / "raw_scores.parquet"
        load = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--child-cli", "score", "--model", str(bundles["tree"]), str(log),
               "--out", str(out)]  # fmt: skip
        wall, peak, _, err = run_child(cmd)
        results["raw"] = {
            "blocks": args.raw_blocks, "lines": lines, "bytes": log.stat().st_size, "bundle": "tree",
            "wall_s": round(wall, 2), "lines_per_s": round(lines / wall), "peak_rss_mib": peak,
            "load_avg_1min_before": round(load, 2), "cli_summary": err.strip().splitlines()[:3],
        }  # fmt: skip
        r = results["raw"]
        print(
            f"score raw log {lines:,} lines ({args.raw_blocks:,} blocks, {r['bytes'] / 1e9:.2f} GB): "
            f"{r['lines_per_s']:,} lines/s end to end ({wall:.1f} s), peak RSS {peak:,} MiB (load {load:.1f})"
        )
    results["bundles"] = {k: str(v) for k, v in bundles.items()}
    results["distinct_file"] = f"{args.distinct:,} sessions, all distinct: sample sessions with 1-5 random edits"
    results["targets"] = TARGETS
    return results


def tree_bundle(args: argparse.Namespace) -> Path:
    """``--tree-bundle``, else the cached (or a freshly trained) decision tree on the sample's split."""
    if args.tree_bundle:
        return args.tree_bundle
    out = args.workdir / "bundle-tree"
    if not out.exists():
        from logsieve.config import resolve_preset
        from logsieve.data.load import load_with_info
        from logsieve.serving.bundle import export_bundle
        from logsieve.training.runs import make_splits
        from logsieve.training.study import baseline_run

        sample = find_sample(args.data)
        sessions, info = load_with_info(sample)
        cfg = resolve_preset("improved-grid")
        baseline_run("decision-tree", 0, make_splits(sessions, cfg, sample), args.workdir / "run-tree", info, cfg.data)
        export_bundle(args.workdir / "run-tree", out)
    return out


def bench_watch(args: argparse.Namespace) -> dict[str, Any]:
    """lines/s and peak RSS of ``logsieve watch --once`` (the follow loop, stopped at the end of the file) on a
    simulated log, and a check that its alerts are ``logsieve score``'s on the same log (same sessions, same
    verdicts, same scores)."""
    import polars as pl

    args.workdir.mkdir(parents=True, exist_ok=True)
    bundle = tree_bundle(args)
    log, lines = simulated_log(args.watch_blocks, args.workdir)
    alerts, scores = args.workdir / "watch_alerts.jsonl", args.workdir / "watch_score.parquet"
    alerts.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    cmd = [sys.executable, __file__, "--child-cli", "watch", str(log), "--model", str(bundle), "--once",
           "--out", str(alerts), "--max-open", str(args.watch_max_open)]  # fmt: skip
    wall, peak, _, err = run_child(cmd)
    summary = next((x for x in err.splitlines() if "sessions scored" in x), "")
    inner = re.search(r"in ([\d.]+) s \(([\d,]+) lines/s\)", summary)
    run_child([sys.executable, __file__, "--child-cli", "score", "--model", str(bundle), str(log),
               "--out", str(scores)])  # fmt: skip
    ref = pl.read_parquet(scores).filter((pl.col("verdict") == "anomaly") | pl.col("new_event"))
    got = pl.read_ndjson(alerts)
    both = ref.join(got, on="session_id", how="full", suffix="_watch")
    mismatched = both.filter(
        pl.col("session_id").is_null() | pl.col("session_id_watch").is_null()
        | (pl.col("verdict") != pl.col("verdict_watch")) | (pl.col("score") != pl.col("score_watch"))
    ).height  # fmt: skip
    r = {"blocks": args.watch_blocks, "lines": lines, "bytes": log.stat().st_size, "bundle": str(bundle),
         "max_open": args.watch_max_open, "wall_s": round(wall, 2), "lines_per_s": round(lines / wall),
         "loop_s": float(inner[1]) if inner else None,
         "loop_lines_per_s": int(inner[2].replace(",", "")) if inner else None, "peak_rss_mib": peak,
         "alerts_watch": got.height, "alerts_score": ref.height,
         "duplicates": got.height - got["session_id"].n_unique(),
         "mismatched": mismatched, "same_as_score": mismatched == 0 and got["session_id"].is_unique().all(),
         "load_avg_1min_before": round(load, 2), "cli_summary": summary.strip()}  # fmt: skip
    print(
        f"watch {lines:,} lines ({args.watch_blocks:,} blocks): {r['lines_per_s']:,} lines/s end to end "
        f"({wall:.1f} s; the follow loop alone {r['loop_lines_per_s'] or 0:,} lines/s), peak RSS {peak:,} MiB "
        f"(load {load:.1f}); alerts {got.height:,} vs score's {ref.height:,}: "
        f"{'the same' if r['same_as_score'] else f'{mismatched} differ'}"
    )
    r["targets"] = {"lines_per_s": TARGETS["lines_per_s"]}
    return r


# --- serve ------------------------------------------------------------------------------------------------------


def serve_bundle(tree: Path | None, work: Path, seed: int = 0) -> tuple[Path, Any]:
    """A bundle folder to serve (``tree``, or a decision tree trained on simulated sessions and exported into
    ``work``) and simulated test sessions to send (no shared data needed)."""
    from logsieve.config import resolve_preset
    from logsieve.data.load import DataInfo
    from logsieve.serving.bundle import export_bundle
    from logsieve.simulator.simulate import simulate_sessions
    from logsieve.training.runs import make_splits
    from logsieve.training.study import baseline_run

    sessions = simulate_sessions(20_000, anomaly_rate=0.03, seed=seed).select("session_id", "label", "events")
    splits = make_splits(sessions, resolve_preset("baseline", seed))
    if tree is not None:
        return tree, splits.test
    baseline_run("decision-tree", seed, splits, work / "run", DataInfo.of(sessions, "simulated", "0" * 64),
                 resolve_preset("baseline").data)  # fmt: skip
    return export_bundle(work / "run", work / "bundle"), splits.test


def start_service(bundle: Path, limits: Any, log: Path) -> tuple[subprocess.Popen, str]:
    """``logsieve serve`` on a free 127.0.0.1 port, in its own process; (process, base URL) once it is ready."""
    import httpx

    cmd = [sys.executable, "-m", "logsieve.cli", "serve", "--model", str(bundle), "--host", SERVE_HOST, "--port", "0",
           "--max-body-bytes", str(limits.max_body_bytes), "--max-sessions", str(limits.max_sessions),
           "--max-events", str(limits.max_events)]  # fmt: skip
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stderr=err, stdout=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "300"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"http://127\.0\.0\.1:\d+", log.read_text())
        if found:
            try:
                if httpx.get(f"{found.group(0)}/readyz", timeout=5).status_code == 200:
                    return proc, found.group(0)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the service did not become ready:\n{log.read_text()[-2000:]}")


def _percentiles(seconds: list[float]) -> dict[str, float]:
    import numpy as np

    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "max_ms": round(float(ms.max()), 3)}  # fmt: skip


def drive(base: str, calls: list[tuple[str, str, bytes | None]], clients: int, limit_s: float) -> dict[str, Any]:
    """Send ``calls`` (method, path, body) from ``clients`` threads with keep-alive; per-call status and latency.
    Stops starting new calls after ``limit_s`` seconds (status -1, reported as ``finished: false``)."""
    import httpx

    local, made = threading.local(), []
    deadline = time.monotonic() + limit_s
    headers = {"content-type": "application/json"}

    def one(call: tuple[str, str, bytes | None]) -> tuple[int, float]:
        if time.monotonic() > deadline:
            return -1, 0.0
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=base, timeout=120)
            made.append(local.c)
        method, path, body = call
        start = time.perf_counter()
        try:
            status = local.c.request(method, path, content=body, headers=headers).status_code
        except httpx.HTTPError:
            status = 0  # transport error: counted, never hidden
        return status, time.perf_counter() - start

    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            out = list(pool.map(one, calls))
    finally:
        for c in made:
            c.close()
    elapsed = time.perf_counter() - start
    done = [(s, t) for s, t in out if s != -1]
    return {"statuses": [s for s, _ in out], "seconds": [t for _, t in done], "elapsed": elapsed,
            "finished": len(done) == len(calls)}  # fmt: skip


def mixed_calls(test: Any, limits: Any) -> list[tuple[str, str, bytes | None, int]]:
    """One of each kind of request (method, path, body, expected status), good and bad."""
    few = [{"id": s, "events": e} for s, e in zip(test["session_id"][:3], test["events"].to_list()[:3], strict=True)]
    line = ("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
            "blk_38865049064139660 terminating")  # fmt: skip
    too_many = [{"id": str(i), "events": ["E5"]} for i in range(limits.max_sessions + 1)]
    return [
        ("POST", "/v1/score", json.dumps({"sessions": few}).encode(), 200),
        ("POST", "/v1/score", json.dumps({"lines": [line, "junk"]}).encode(), 200),
        ("POST", "/v1/score", json.dumps({"sessions": few, "explain": True}).encode(), 200),
        ("GET", "/healthz", None, 200),
        ("POST", "/v1/score", b'{"sessions": [{"id": "a"', 400),  # truncated JSON
        ("POST", "/v1/score", b'{"sessions": [{"id": "a", "events": "E5"}]}', 422),  # wrong type
        ("POST", "/v1/score", b'{"sessions": [{"id": "a", "events": ["E5"]}], "explian": true}', 422),  # unknown field
        ("POST", "/v1/score", json.dumps({"sessions": too_many}).encode(), 422),  # --max-sessions
        ("POST", "/v1/score", b" " * (limits.max_body_bytes + 1), 413),  # --max-body-bytes
        ("GET", "/v1/score", None, 405),
        ("GET", "/nowhere", None, 404),
    ]


def bench_serve(args: argparse.Namespace) -> dict[str, Any]:
    """Latency and requests/s of /v1/score for 1- and 1,000-session requests, then the mixed load."""
    from logsieve.serving.limits import Limits

    quick = args.serve_quick
    n_small, n_big, n_mixed = (200, 10, 500) if quick else (2_000, 100, args.serve_requests)
    limits = Limits(max_body_bytes=2 << 20, max_sessions=2_000)  # a 1,000-session body is ~0.2 MB
    with tempfile.TemporaryDirectory(prefix="logsieve-bench-serve-") as tmp:
        bundle, test = serve_bundle(args.tree_bundle, Path(tmp))
        proc, base = start_service(bundle, limits, Path(tmp) / "serve.log")
        try:
            return measure_service(base, test, limits, args, n_small, n_big, n_mixed)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def measure_service(base: str, test: Any, limits: Any, args: argparse.Namespace, n_small: int, n_big: int,
                    n_mixed: int) -> dict[str, Any]:  # fmt: skip
    import httpx

    rows = test.to_dicts()
    one = [json.dumps({"sessions": [{"id": r["session_id"], "events": r["events"]}]}).encode()
           for r in rows[:n_small]]  # fmt: skip
    big = json.dumps({"sessions": [{"id": r["session_id"], "events": r["events"]} for r in rows[:1000]]}).encode()
    out: dict[str, Any] = {"model": httpx.get(f"{base}/readyz", timeout=10).json()["model"], "quick": args.serve_quick,
                           "clients": args.serve_clients, "limits": limits.model_dump()}  # fmt: skip
    for name, bodies in (("one_session", one), ("thousand_sessions", [big] * n_big)):
        res = drive(base, [("POST", "/v1/score", b) for b in bodies], args.serve_clients, args.serve_max_seconds)
        out[name] = {"requests": len(bodies), "body_bytes": len(bodies[0]), "ok": res["statuses"].count(200),
                     **_percentiles(res["seconds"]), "requests_per_s": round(len(res["seconds"]) / res["elapsed"], 1),
                     "finished": res["finished"]}  # fmt: skip
        print(f"serve {name}: {out[name]}", flush=True)
    kinds = mixed_calls(test, limits)
    plan = [kinds[i % len(kinds)] for i in range(n_mixed)]
    res = drive(base, [(m, p, b) for m, p, b, _ in plan], args.serve_clients, args.serve_max_seconds)
    got = list(zip(plan, res["statuses"], strict=True))
    wrong = Counter(f"{m} {p} expected {want} got {s}" for (m, p, _, want), s in got if s not in (want, -1))
    bad = [(want, s) for (_, _, _, want), s in got if want >= 400 and s != -1]
    mixed = {
        "requests": n_mixed, "finished": res["finished"], "elapsed_s": round(res["elapsed"], 2),
        "requests_per_s": round(len(res["seconds"]) / res["elapsed"], 1), **_percentiles(res["seconds"]),
        "statuses": dict(sorted(Counter(str(s) for s in res["statuses"]).items())),
        "server_errors": sum(s >= 500 for s in res["statuses"]), "transport_errors": res["statuses"].count(0),
        "bad_requests": len(bad), "bad_requests_4xx": sum(400 <= s < 500 for _, s in bad), "unexpected": dict(wrong),
    }  # fmt: skip
    mixed["passed"] = bool(mixed["finished"] and not mixed["server_errors"] and not mixed["transport_errors"]
                           and not wrong and mixed["bad_requests"] == mixed["bad_requests_4xx"])  # fmt: skip
    out["mixed"] = mixed
    print(f"serve mixed: {mixed}", flush=True)
    out["metrics_scrape_bytes"] = len(httpx.get(f"{base}/metrics", timeout=10).content)
    return out


PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "score": bench_score,
    "watch": bench_watch,
    "serve": bench_serve,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="score", help=f"comma-separated: {', '.join(PARTS)}")
    ap.add_argument("--data", help="folder holding sessions_sample.csv.gz (default: ../shared/data/hdfs)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/logsieve-bench-use"), help="generated inputs, bundles")
    ap.add_argument("--tree-bundle", type=Path, help="a decision-tree bundle (default: trained on the sample)")
    ap.add_argument("--rnn-bundle", type=Path, help="an improved-grid bundle (default: trained on the sample)")
    ap.add_argument("--rnn-epochs", type=int, default=1, help="epochs of the RNN trained when no --rnn-bundle")
    ap.add_argument("--distinct", type=int, default=100_000, help="sessions in the all-distinct file")
    ap.add_argument("--raw-blocks", type=int, default=0, help="simulated blocks for raw logs end to end (0: skip)")
    ap.add_argument("--watch-blocks", type=int, default=575_061, help="simulated blocks of the watch part's log")
    ap.add_argument("--watch-max-open", type=int, default=500_000, help="watch's --max-open")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (score's --threads)")
    ap.add_argument("--serve-requests", type=int, default=10_000, help="serve: requests in the mixed load")
    ap.add_argument("--serve-clients", type=int, default=4, help="serve: concurrent client threads")
    ap.add_argument("--serve-max-seconds", type=float, default=900, help="serve: time bound of each phase")
    ap.add_argument("--serve-quick", action="store_true", help="serve: 200 + 10 + 500 requests, to check it works")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "use.json")
    ap.add_argument("--child-score", nargs=3, type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-cli", action="store_true", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.child_cli:
        return child_cli(rest)
    if args.child_score:
        return child_score(*args.child_score, args.repeats, args.threads)
    chosen = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        ap.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
    existing = json.loads(args.json.read_text()) if args.json.exists() else {}
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    for part in chosen:
        load = round(os.getloadavg()[0], 2)
        existing[part] = {"command": " ".join(sys.argv), "machine": machine, "load_avg_1min": load, **PARTS[part](args)}
    from logsieve.artifacts import write_json

    write_json(args.json, existing)
    print(f"wrote {args.json}")


def child_cli(argv: list[str]) -> None:
    """The real CLI in this process, then its peak RSS on stderr for the parent."""
    import resource

    from logsieve.cli import main as cli_main

    sys.argv = ["logsieve", *argv]
    try:
        cli_main()
    finally:
        print(f"PEAK_RSS_KIB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)


if __name__ == "__main__":
    main()
