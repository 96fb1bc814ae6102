"""The built-in grid on the public sample, against naive per-block training, and its best config on test.

1. `logsieve search --space grid --jobs 2` (fresh study): wall time, trials complete/pruned, worker-seconds
   per trial.
2. Naive cost per trial, estimated from a measured sample: for K random grid points, one epoch of per-block
   training (every session a row, no de-duplication, no length bucketing) is timed, and the same points are
   trained logsieve's way without pruning to count their epochs (early stopping as in the search; the
   de-duplicated loss equals the per-session one, so a naive run would stop at the same epoch). Naive trial =
   naive epoch seconds x those epochs; the naive full grid = that x grid size.
3. The best configuration (`improved-grid` with the search result) and `improved`, trained with the presets'
   full budget, scored on the TEST split (the search never saw it).

Timing-sensitive: run it alone, under the shared lock.

    flock /tmp/logsieve-bench.lock python benchmarks/search.py --data ../shared/data/hdfs/sessions_sample.csv.gz
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from logsieve.config import resolve_preset
from logsieve.data.load import load_with_info
from logsieve.models.rnn import RNNClassifier
from logsieve.search.runner import SearchSettings, prepare
from logsieve.search.spaces import base_config, load_space, trial_config
from logsieve.training.runs import make_splits, train_run
from logsieve.training.trainer import Trainer

RESULTS = Path(__file__).parent / "results"


def run_grid(data: str, out: Path, jobs: int, extra: list[str]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["search", "--data", data, "--space", "grid", "--jobs", str(jobs), "--out", str(out), *extra]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "logsieve.cli", *cmd], check=True)
    wall = time.perf_counter() - start
    result = json.loads((out / "search_result.json").read_text())
    trials = result["trials"]["complete"] + result["trials"]["pruned"]
    return {"command": "logsieve " + " ".join(cmd), "wall_seconds": round(wall, 1), "trials": result["trials"],
            "best_params": result["best_params"], "best_val_f1": result["val_f1"],
            "worker_seconds_per_trial": round(wall * jobs / trials, 2),
            "trial_seconds_mean": round(result["trial_seconds_sum"] / trials, 2)}  # fmt: skip


def naive_sample(data: str, k: int, seed: int) -> dict:
    """Per-block epoch time and logsieve's unpruned epochs for K random grid points (one thread)."""
    torch.set_num_threads(1)
    sessions, info = load_with_info(data)
    space, settings = load_space("grid"), SearchSettings()
    points = random.Random(seed).sample(_grid(space.grid()), k)
    base = base_config(settings)
    dedup = prepare(sessions, base, info.source)
    naive_base = base.model_copy(update={"train": base.train.model_copy(update={"dedup": False, "bucket": False})})
    naive = prepare(sessions, naive_base, info.source)
    rows = []
    for params in points:
        cfg = trial_config(base, params)
        fast = _fit(cfg, dedup, epochs=cfg.train.epochs)
        ncfg = trial_config(naive_base, params)
        slow = _fit(ncfg.model_copy(update={"train": ncfg.train.model_copy(update={"epochs": 1})}), naive, epochs=1)
        rows.append({"params": params, "epochs_unpruned": len(fast), "dedup_epoch_s": statistics.median(fast),
                     "naive_epoch_s": slow[0], "naive_trial_s": slow[0] * len(fast)})  # fmt: skip
        print(
            f"naive {slow[0]:.1f} s/epoch, de-duplicated {statistics.median(fast):.2f} s/epoch, "
            f"{len(fast)} epochs: {params}",
            flush=True,
        )
    return {"rows": rows, "train_rows_naive": len(naive.train), "train_rows_dedup": len(dedup.train),
            "naive_trial_s_mean": statistics.mean(r["naive_trial_s"] for r in rows),
            "grid_size": space.size}  # fmt: skip


def _grid(grid: dict) -> list[dict]:
    import itertools

    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def _fit(cfg, prepared, epochs: int) -> list[float]:
    torch.manual_seed(cfg.seed)
    model = RNNClassifier(prepared.vocab_size, cfg.model)
    trainer = Trainer(cfg.train, seed=cfg.seed, progress=False).fit(model, prepared.train, prepared.val)
    return [r.seconds for r in trainer.history_][:epochs]


def test_scores(data: str, search_result: Path, out: Path) -> dict:
    torch.set_num_threads(1)
    sessions, info = load_with_info(data)
    scores = {}
    for preset in ("improved", "improved-grid"):
        cfg = resolve_preset(preset, search_result=search_result)
        metrics = train_run(cfg, make_splits(sessions, cfg, data), out / preset, info, progress=False)
        scores[preset] = {"test_f1": metrics["f1"], "val_f1": metrics["validation"]["f1"],
                          "fit_seconds": round(metrics["fit_seconds"], 1),
                          "epochs_run": metrics["epochs_run"]}  # fmt: skip
        print(f"{preset}: test F1 {metrics['f1']:.4f} (validation {metrics['validation']['f1']:.4f})", flush=True)
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/hdfs/sessions_sample.csv.gz")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--naive-k", type=int, default=4, help="grid points timed with naive training")
    ap.add_argument("--skip-grid", action="store_true", help="reuse results/search-grid")
    args, extra = ap.parse_known_args()
    RESULTS.mkdir(exist_ok=True)
    grid_dir = RESULTS / "search-grid"
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    report: dict = {"started": started, "argv": sys.argv, "torch_threads_per_worker": 1}
    if args.skip_grid:
        prior = json.loads((RESULTS / "search.json").read_text())
        report["grid"] = prior["grid"]
    else:
        report["grid"] = run_grid(args.data, grid_dir, args.jobs, extra)
    print(json.dumps(report["grid"], indent=2), flush=True)
    report["naive"] = naive_sample(args.data, args.naive_k, seed=0)
    per_trial = report["grid"]["worker_seconds_per_trial"]
    naive = report["naive"]["naive_trial_s_mean"]
    report["cost"] = {
        "naive_worker_s_per_trial": round(naive, 1), "logsieve_worker_s_per_trial": per_trial,
        "ratio": round(naive / per_trial, 1),
        "naive_full_grid_hours_1_core": round(naive * report["naive"]["grid_size"] / 3600, 1),
        "naive_full_grid_hours_2_workers": round(naive * report["naive"]["grid_size"] / 3600 / args.jobs, 1),
    }  # fmt: skip
    print(json.dumps(report["cost"], indent=2), flush=True)
    report["test"] = test_scores(args.data, grid_dir / "search_result.json", RESULTS / "search-runs")
    (RESULTS / "search.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {RESULTS / 'search.json'}")


if __name__ == "__main__":
    main()
