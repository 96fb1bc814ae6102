"""Benchmark: the nine-preset study on the public 92 k-session sample, plus the de-dup speed-up.

Prints and writes JSON: wall time per preset and in total, F1 per preset, the classical baselines
(decision tree, random forest, logistic regression on event counts) on the same split, and the
de-duplication speed-up measured side by side in this run (same preset, same epochs, dedup on vs off).

One split's test set holds ~540 anomalies, so one session moves F1 by ~0.001 and a single split can
crown either side by luck. ``--splits K`` repeats the whole study on K different random splits
(``data.split_seed`` 0..K-1; every model of one split is scored on that split's test set) and reports
the per-split tables plus the mean over splits, which is the comparison to trust.

    python benchmarks/study.py                     # ../shared/data/hdfs/sessions_sample.csv.gz
    python benchmarks/study.py --splits 3 --jobs 2 --out benchmarks/results/study.json
    python benchmarks/study.py --presets improved-grid --splits 5 --first-split 5 --skip-dedup --jobs 1 \
        --out benchmarks/results/paired-5-9.json    # one preset against the trees on more splits

Each split also reports its label conflicts (``conflict_summary``): test sessions whose label is the
minority label of their training twins. With count twins this is the ceiling of any model that agrees
with its training data on counts — a decision tree at that ceiling cannot be beaten by counts alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from statistics import fmean

import polars as pl
import torch

from logsieve.artifacts import versions, write_json
from logsieve.config import preset_names, resolve_preset
from logsieve.data.load import DataInfo, load_with_info
from logsieve.evaluation.evaluate import evaluate_scorer
from logsieve.evaluation.metrics import paired_comparison
from logsieve.evaluation.report import aggregate
from logsieve.training.detector import Detector
from logsieve.training.runs import make_splits
from logsieve.training.study import run_study

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hdfs" / "sessions_sample.csv.gz"


def dedup_speedup(sessions: pl.DataFrame, preset: str, epochs: int) -> dict:
    """Train the same preset for the same epochs with de-dup on and off; compare time per epoch and F1."""
    out = {}
    for dedup in (True, False):
        cfg = resolve_preset(preset, overrides={"train": {"dedup": dedup, "epochs": epochs, "patience": epochs}})
        train, val, test = make_splits(sessions, cfg)
        det = Detector(cfg, progress=False).fit(train, val)
        metrics = evaluate_scorer(det, test, train=train)
        per_epoch = [r.seconds for r in det.history_]
        out["dedup" if dedup else "per_block"] = {
            "train_rows": det.n_train_rows_, "epochs": len(per_epoch),
            "seconds_per_epoch_median": sorted(per_epoch)[len(per_epoch) // 2],
            "fit_seconds": det.fit_seconds_, "f1": metrics["f1"], "confusion": metrics["confusion"],
        }  # fmt: skip
        print(
            f"  dedup={dedup}: {det.n_train_rows_:,} rows, "
            f"{out['dedup' if dedup else 'per_block']['seconds_per_epoch_median']:.2f}"
            f" s/epoch, test F1 {metrics['f1']:.4f}",
            flush=True,
        )
    out["speedup_per_epoch"] = out["per_block"]["seconds_per_epoch_median"] / out["dedup"]["seconds_per_epoch_median"]
    out["f1_difference"] = out["dedup"]["f1"] - out["per_block"]["f1"]
    return out


def one_split(
    sessions: pl.DataFrame, info: DataInfo, study_dir: Path, split_seed: int, seed: int, jobs: int, presets: list[str]
) -> dict:
    """The presets plus the count baselines on the split drawn with ``split_seed``."""
    start = time.perf_counter()
    overrides = {"data": {"split_seed": split_seed}}
    results = run_study(sessions, info, study_dir, presets, [seed], overrides, progress=False, jobs=jobs)
    total = time.perf_counter() - start
    rnn = results.filter(pl.col("kind") == "rnn")
    base = {r["name"]: r["f1"] for r in results.filter(pl.col("kind") == "baseline").iter_rows(named=True)}
    best = rnn.sort("f1", descending=True).row(0, named=True)
    print(aggregate(results).select("name", "f1_mean", "fp_mean", "fn_mean", "fit_seconds_mean", "f1_unseen_mean"))
    conflicts = json.loads((study_dir / "study.json").read_text())["label_conflicts"]  # run_study computed them
    ceiling = conflicts["counts"]["f1_ceiling"]
    tree_at_ceiling = base["decision-tree"] >= ceiling - 1e-9
    print(f"split {split_seed}: {total / 60:.1f} min; best preset {best['name']} F1 {best['f1']:.4f}; "
          f"decision tree {base['decision-tree']:.4f}, random forest {base['random-forest']:.4f}; "
          f"count-twin ceiling {ceiling:.4f}" + (" (the tree is at it: only F1 above the ceiling beats it)"
                                                  if tree_at_ceiling else ""), flush=True)  # fmt: skip
    return {
        "split_seed": split_seed, "study_seconds": total, "label_conflicts": conflicts,
        "tree_at_count_ceiling": tree_at_ceiling,
        "presets": {r["name"]: {"f1": r["f1"], "fit_seconds": r["fit_seconds"], "fp": r["fp"], "fn": r["fn"],
                                "f1_unseen": r["f1_unseen"], "epochs_run": r["epochs_run"]}
                    for r in rnn.iter_rows(named=True)},
        "baselines": base, "best_preset": best["name"], "best_f1": best["f1"],
        "best_beats_tree_and_forest": best["f1"] > max(base["decision-tree"], base["random-forest"]),
    }  # fmt: skip


def across_splits(splits: list[dict]) -> dict:
    """Mean F1 per model over the splits; the preset with the best mean against the trees' means."""
    presets = {name: fmean([s["presets"][name]["f1"] for s in splits]) for name in splits[0]["presets"]}
    baselines = {name: fmean([s["baselines"][name] for s in splits]) for name in splits[0]["baselines"]}
    best = max(presets, key=presets.get)

    def record(name: str, baseline: str) -> dict:  # per-split wins / ties / losses and the sign test
        return paired_comparison([s["presets"][name]["f1"] for s in splits], [s["baselines"][baseline] for s in splits])

    return {
        "splits": len(splits), "preset_f1_mean": presets, "baseline_f1_mean": baselines,
        "versus": {name: {b: record(name, b) for b in ("decision-tree", "random-forest")} for name in presets},
        "best_preset_by_mean": best, "best_f1_mean": presets[best],
        "best_beats_tree_and_forest_by_mean":
            presets[best] > max(baselines["decision-tree"], baselines["random-forest"]),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--splits", type=int, default=1, help="repeat the study on this many random splits")
    ap.add_argument(
        "--first-split", type=int, default=0, help="split seeds run from here (to share K splits between machines)"
    )
    ap.add_argument("--presets", default="all", help="comma-separated preset names (default: all nine)")
    ap.add_argument("--skip-dedup", action="store_true", help="leave out the de-dup speed-up measurement")
    ap.add_argument("--dedup-preset", default="improved")
    ap.add_argument("--dedup-epochs", type=int, default=5)
    ap.add_argument("--study-dir", type=Path, default=None, help="keep the study here (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/study.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    sessions, info = load_with_info(args.data)
    study_dir = args.study_dir or Path(tempfile.mkdtemp(prefix="logsieve-study-"))
    presets = preset_names() if args.presets == "all" else args.presets.split(",")
    splits = []
    for split_seed in range(args.first_split, args.first_split + args.splits):
        print(
            f"study of {len(presets)} presets on {info.sessions:,} sessions, split seed {split_seed}, "
            f"{args.jobs} jobs -> {study_dir / f'split-{split_seed}'}",
            flush=True,
        )
        splits.append(
            one_split(sessions, info, study_dir / f"split-{split_seed}", split_seed, args.seed, args.jobs, presets)
        )
    overall = across_splits(splits)
    if args.splits > 1:
        print(f"mean over {args.splits} splits: " + ", ".join(
            f"{k} {v:.4f}" for k, v in sorted({**overall["preset_f1_mean"], **overall["baseline_f1_mean"]}.items(),
                                                 key=lambda kv: -kv[1])))  # fmt: skip
        for name, record in overall["versus"].items():
            print(f"  {name} per split vs " + "; ".join(
                f"{b}: {r['wins']} won / {r['ties']} tied / {r['losses']} lost (sign test p {r['sign_test_p']:.2f})"
                for b, r in record.items()))  # fmt: skip

    speed = None
    if not args.skip_dedup:
        print(f"de-dup speed-up ({args.dedup_preset}, {args.dedup_epochs} epochs, 1 thread):", flush=True)
        speed = dedup_speedup(sessions, args.dedup_preset, args.dedup_epochs)
        print(f"  per-epoch speed-up {speed['speedup_per_epoch']:.1f}x, F1 difference {speed['f1_difference']:+.4f}")

    first = splits[0]
    report = {
        "data": info.__dict__, "jobs": args.jobs, "torch_threads_per_job": 1,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()},
        "versions": versions(), "study_total_seconds": first["study_seconds"],
        "presets": first["presets"], "baselines": first["baselines"], "best_preset": first["best_preset"],
        "best_f1": first["best_f1"], "best_beats_tree_and_forest": first["best_beats_tree_and_forest"],
        "per_split": splits, "across_splits": overall, "dedup": speed,
    }  # fmt: skip
    write_json(args.out, report)
    print(f"wrote {args.out}")
    print(
        json.dumps(
            {k: report[k] for k in ("study_total_seconds", "best_preset", "best_f1", "baselines", "across_splits")}
        )
    )


if __name__ == "__main__":
    main()
