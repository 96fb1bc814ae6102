"""Template mining, side by side: logsieve's miner vs Drain3 on the same HDFS message lines.

Measures lines/s (median of a few interleaved runs, the machine is noisy) and grouping accuracy for both, on
HDFS_2k (truth: loghub's structured CSV) and the 222k-line 2 % sample (truth: loghub's 30 HDFS templates, first
match, as in the data README). Both get the same parameters and the same masks (Drain3's regex masking, Python
syntax). Drain3 pins old dependencies, so it lives in its own virtualenv (created on first use) and runs in a
subprocess; lines and results travel through files. Drain3 is never a dependency of logsieve.

    /work/venv/bin/python benchmarks/mining.py [--data DIR] [--repeats 5] [--out benchmarks/results/mining.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from logsieve.parsing.accuracy import grouping_accuracy
from logsieve.parsing.mining import TemplateMiner

REPO = Path(__file__).resolve().parents[1]
DRAIN3 = "drain3==0.9.11"
PARAMS = {"depth": 4, "sim_threshold": 0.5, "max_children": 100}
# The default logsieve masks in Python `re` syntax, as Drain3 mask names (it writes them as <NAME>).
DRAIN3_MASKS = [
    (r"blk_-?\d+(?:\s+blk_-?\d+)*", "BLK"),
    (r"\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?", "IP"),
    (r"(?:(?<=\s)|^)/[\w.\-]+(?:/[\w.\-<>*]*)*", "PATH"),
    (r"\b\d+(?:\.\d+)?\b", "NUM"),
]

# Runs inside the Drain3 virtualenv: argv = config.json lines.txt result.json. Times only the mining loop.
DRIVER = r"""
import json, sys, time
from importlib.metadata import version
from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

cfg = json.load(open(sys.argv[1]))
lines = open(sys.argv[2], encoding="utf-8").read().split("\n")
c = TemplateMinerConfig()
c.drain_depth, c.drain_sim_th, c.drain_max_children = cfg["depth"], cfg["sim_threshold"], cfg["max_children"]
c.masking_instructions = [MaskingInstruction(p, name) for p, name in cfg["masks"]]
miner = TemplateMiner(config=c)
start = time.perf_counter()
ids = [miner.add_log_message(line)["cluster_id"] for line in lines]
seconds = time.perf_counter() - start
masked = [miner.masker.mask(line) for line in lines] if cfg["write_masked"] else None
result = {"seconds": seconds, "ids": ids, "masked": masked, "templates": len(miner.drain.clusters),
          "version": version("drain3")}
json.dump(result, open(sys.argv[3], "w"))
"""


def ensure_drain3(venv: Path) -> Path:
    """Python of a private virtualenv holding Drain3; created with venv + pip on first use."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with {DRAIN3} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", DRAIN3], check=True)
    return python


def find_hdfs(arg: str | None) -> Path:
    for c in [Path(arg)] if arg else [Path(os.environ.get("LOGSIEVE_DATA", "/nonexistent")) / "hdfs",
                                      REPO.parent / "shared" / "data" / "hdfs"]:  # fmt: skip
        if (c / "raw" / "HDFS_2k.log_structured.csv").exists():
            return c
    sys.exit("HDFS samples not found: pass --data DIR (the folder holding raw/ and templates.csv)")


def loghub_truth(contents: pl.Series, templates_csv: Path) -> pl.Series:
    """Ground-truth ids by loghub's templates, first match wins (how the data README parsed the sample)."""
    templates = pl.read_csv(templates_csv)
    exprs = []
    for eid, template in templates.iter_rows():
        regex = "^" + ".*?".join(_escape(part) for part in template.split("<*>")) + "$"
        exprs.append(pl.when(pl.col("c").str.contains(regex)).then(pl.lit(eid)))
    truth = contents.to_frame("c").select(pl.coalesce(exprs).alias("truth"))["truth"]
    if truth.null_count():
        raise SystemExit(f"{truth.null_count()} lines match no loghub template")
    return truth


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in r"\.+*?()|[]{}^$#&-~" else ch for ch in text)


def load_datasets(hdfs: Path) -> dict[str, tuple[pl.Series, pl.Series, str]]:
    """name -> (message contents, true template ids, what the truth is)."""
    structured = pl.read_csv(hdfs / "raw" / "HDFS_2k.log_structured.csv")
    with gzip.open(hdfs / "raw" / "hdfs_sample_2pct.log.gz", "rt", encoding="utf-8") as f:
        raw = pl.Series("line", f.read().splitlines())
    # "date time pid level component: message" -> message
    sample = raw.str.extract(r"^\S+ \S+ \S+ \S+ \S+?: (.*)$", 1).rename("content")
    if sample.null_count():
        raise SystemExit(f"{sample.null_count()} lines of the 2 % sample have no message part")
    return {
        "HDFS_2k": (structured["Content"], structured["EventId"], "loghub HDFS_2k structured CSV (E1..E14)"),
        "hdfs_sample_2pct": (sample, loghub_truth(sample, hdfs / "templates.csv"),
                             "loghub templates.csv E1..E30, first match"),
    }  # fmt: skip


def run_logsieve(contents: pl.Series) -> tuple[float, pl.Series, int]:
    start = time.perf_counter()
    miner = TemplateMiner(**PARAMS)
    ids = miner.fit_transform(contents)
    return time.perf_counter() - start, ids, miner.templates_.height


def run_drain3(python: Path, workdir: Path, lines_file: Path, write_masked: bool) -> dict:
    config, result = workdir / "config.json", workdir / "result.json"
    config.write_text(json.dumps({**PARAMS, "masks": DRAIN3_MASKS, "write_masked": write_masked}))
    driver = workdir / "drain3_driver.py"
    driver.write_text(DRIVER)
    subprocess.run([str(python), str(driver), str(config), str(lines_file), str(result)], check=True)
    return json.loads(result.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="HDFS data folder (holds raw/ and templates.csv); default: ../shared/data/hdfs")
    ap.add_argument("--repeats", type=int, default=5, help="runs per side and dataset, interleaved; medians")
    ap.add_argument("--drain3-venv", default="/tmp/drain3-venv", type=Path)
    ap.add_argument("--out", default=REPO / "benchmarks" / "results" / "mining.json", type=Path)
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    python = ensure_drain3(args.drain3_venv)
    datasets = load_datasets(find_hdfs(args.data))
    report: dict = {
        "command": " ".join([Path(sys.executable).as_posix(), *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "cpu": _cpu_model(), "platform": platform.platform(),
                    "python": platform.python_version(), "polars": pl.__version__},
        "params": PARAMS,
        "timing": "median wall time of the mining call only (masking + tree + ids); no file reading or start-up",
        "datasets": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mining-bench-") as tmp:
        workdir = Path(tmp)
        for name, (contents, truth, truth_name) in datasets.items():
            lines_file = workdir / f"{name}.txt"
            lines_file.write_text("\n".join(contents.to_list()), encoding="utf-8")
            ours, theirs = [], []
            for r in range(args.repeats):  # interleaved, so both sides see the same noise
                seconds, ids, n_templates = run_logsieve(contents)
                ours.append(seconds)
                d3 = run_drain3(python, workdir, lines_file, write_masked=(r == 0))
                theirs.append(d3["seconds"])
                if r == 0:  # results are deterministic; keep the first run's, and check the masks agree
                    d3_ids = pl.Series(d3["ids"]).cast(pl.String)
                    d3_templates, d3_version = d3["templates"], d3["version"]
                    same_masks = (pl.Series(d3["masked"]) == TemplateMiner().mask(contents)).mean()
            n = len(contents)
            ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
            row = {
                "lines": n,
                "truth": truth_name,
                "logsieve": {"seconds": ours, "median_s": ours_s, "lines_per_s": n / ours_s, "templates": n_templates,
                             "grouping_accuracy": grouping_accuracy(ids, truth)},
                "drain3": {"version": d3_version, "seconds": theirs, "median_s": theirs_s, "lines_per_s": n / theirs_s,
                           "templates": d3_templates, "grouping_accuracy": grouping_accuracy(d3_ids, truth)},
                "speed_ratio": theirs_s / ours_s,
                "agreement_with_drain3": grouping_accuracy(ids, d3_ids),
                "masked_lines_identical": same_masks,
            }  # fmt: skip
            report["datasets"][name] = row
            _print(name, row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(report, indent=2))
    os.replace(tmp_out, args.out)
    print(f"wrote {args.out}")


def _print(name: str, row: dict) -> None:
    print(f"\n{name}: {row['lines']:,} lines; truth = {row['truth']}")
    for side in ("logsieve", "drain3"):
        s = row[side]
        print(f"  {side:9s} {s['lines_per_s']:>12,.0f} lines/s  (median {s['median_s']:.4f} s)  "
              f"grouping accuracy {s['grouping_accuracy']:.4f}  templates {s['templates']}")  # fmt: skip
    print(f"  speed ratio logsieve/drain3: {row['speed_ratio']:.1f}x; same groups as drain3: "
          f"{row['agreement_with_drain3']:.4f}; "
          f"identical masked lines: {row['masked_lines_identical']:.4f}")  # fmt: skip


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
