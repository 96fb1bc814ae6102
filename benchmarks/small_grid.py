"""A small, honest grid for the `*-grid*` presets (until `logsieve search` replaces it).

Every configuration trains on the training split and is ranked on the VALIDATION split only (F1, ties
broken by validation loss); the test split is never looked at. Writes the best parameters as the
search-result file the presets read, with the command that produced it.

    python benchmarks/small_grid.py --data ../shared/data/hdfs/sessions_sample.csv.gz \
        --out src/logsieve/resources/grid_result.json --jobs 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

GRID = {
    "cell": ["lstm", "gru"],
    "hidden_size": [64, 128],
    "lr": [0.003, 0.01],
}
FIXED = {"train": {"class_weight": "balanced", "epochs": 30, "patience": 8}}


def evaluate(args: tuple[str, dict]) -> dict:
    import torch

    from logsieve.config import resolve_preset, split_params
    from logsieve.data.load import load_data
    from logsieve.training.detector import Detector
    from logsieve.training.run import make_splits

    torch.set_num_threads(1)
    data, params = args
    overrides = {**FIXED, "model": split_params(params)["model"],
                 "train": {**FIXED["train"], **split_params(params)["train"]}}  # fmt: skip
    cfg = resolve_preset("improved", overrides=overrides)
    train, val, _ = make_splits(load_data(data), cfg, data)
    start = time.perf_counter()
    det = Detector(cfg, progress=False).fit(train, val)
    best = next(r for r in det.history_ if r.epoch == det.best_epoch_)
    return {"params": params, "val_f1": best.val_f1, "val_loss": best.val_loss, "seconds": time.perf_counter() - start}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    combos = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        trials = list(pool.map(evaluate, [(args.data, c) for c in combos]))
    for t in sorted(trials, key=lambda t: (-t["val_f1"], t["val_loss"])):
        print(f"val F1 {t['val_f1']:.4f}  val loss {t['val_loss']:.5f}  {t['seconds']:6.0f}s  {t['params']}")
    best = min(trials, key=lambda t: (-t["val_f1"], t["val_loss"]))
    result = {
        "best_params": best["params"],
        "objective": "validation F1 (ties: validation loss); test split never used",
        "base_preset": "improved", "fixed": FIXED, "grid": GRID, "trials": trials,
        "seconds": time.perf_counter() - start,
        "command": "python " + " ".join(sys.argv),
    }  # fmt: skip
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"best {best['params']} -> {args.out} ({result['seconds']:.0f}s)")


if __name__ == "__main__":
    main()
