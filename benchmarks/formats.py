"""Template mining on the 16 Loghub 2k samples: logsieve's miner vs Drain3, per system, on the same lines and masks.

Each sample is read with its shipped format (``resources/formats.toml``: header pattern, masks, Drain depth and
similarity threshold). logsieve's ``TemplateMiner`` gets the raw contents and masks them itself (timed); Drain3
gets the same rules as masking instructions (the same regexes in Python syntax, the same replacements; the benchmark
checks that both sides' masked lines are identical), the same depth, threshold and max_children. Both timings
cover masking + mining, no reading. Where accuracies differ, an untimed second Drain3 pass that sees each distinct
masked line once (as logsieve's miner does; Drain3 routes a repeated line through the tree again and may then open
a new cluster for it) shows whether that documented difference explains the gap. Grouping accuracy is scored
against the ground-truth ``EventId`` of each ``S_2k.log_structured.csv``. Drain3 pins old dependencies, so it
lives in its own virtualenv (created on first use) and runs in a subprocess, as in ``benchmarks/mining.py``; it is
never a dependency of logsieve.

    python benchmarks/formats.py [--data DIR] [--repeats 3] [--out benchmarks/results/formats.json]

Data: Loghub (github.com/logpai/loghub), Zhu et al., "Loghub: A Large Collection of System Log Datasets for
AI-driven Log Analytics", ISSRE 2023. Only figures are written here, never the data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from mining import ensure_drain3  # benchmarks/mining.py: the same private Drain3 venv

from logsieve.artifacts import write_json
from logsieve.parsing.accuracy import grouping_accuracy
from logsieve.parsing.formats import shipped_formats
from logsieve.parsing.mining import TemplateMiner
from logsieve.parsing.reader import read_format

REPO = Path(__file__).resolve().parents[1]
MAX_CHILDREN = 100

# Runs inside the Drain3 virtualenv: argv = jobs.json result.json. Each job: lines file + Drain parameters.
DRIVER = r"""
import json, re, sys, time
from importlib.metadata import version
from drain3 import TemplateMiner
from drain3.masking import AbstractMaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig


class Mask(AbstractMaskingInstruction):
    # logsieve's rule as given: the whole replacement (Python syntax), whatever Drain3's mask prefix/suffix

    def __init__(self, pattern, replacement):
        super().__init__(replacement)
        self.regex, self.replacement = re.compile(pattern), replacement

    def mask(self, content, mask_prefix, mask_suffix):
        return self.regex.sub(self.replacement, content)


jobs = json.load(open(sys.argv[1]))
out = {"version": version("drain3"), "systems": {}}
for name, job in jobs.items():
    lines = open(job["lines"], encoding="utf-8").read().split("\n")
    c = TemplateMinerConfig()
    c.drain_depth, c.drain_sim_th, c.drain_max_children = job["depth"], job["sim_threshold"], job["max_children"]
    c.masking_instructions = [Mask(p, r) for p, r in job["masks"]]
    miner = TemplateMiner(config=c)
    start = time.perf_counter()
    ids = [miner.add_log_message(line)["cluster_id"] for line in lines]
    seconds = time.perf_counter() - start
    masked = [miner.masker.mask(line) for line in lines]
    # Untimed diagnosis: each distinct masked line once, in order of first appearance, then every line gets the
    # cluster of its masked string -- i.e. Drain3 without re-routing repeats (what logsieve's miner does).
    c.masking_instructions = []  # the lines are masked already
    once = TemplateMiner(config=c)
    first = {}
    for text in masked:
        if text not in first:
            first[text] = once.add_log_message(text)["cluster_id"]
    distinct_ids = [first[text] for text in masked]
    out["systems"][name] = {"seconds": seconds, "ids": ids, "templates": len(miner.drain.clusters), "masked": masked,
                          "distinct_ids": distinct_ids, "distinct_templates": len(once.drain.clusters)}
json.dump(out, open(sys.argv[2], "w"))
"""


def find_loghub(arg: str | None) -> Path:
    env = os.environ.get("LOGSIEVE_DATA")
    candidates = (
        [Path(arg)]
        if arg
        else [*([Path(env) / "loghub2k"] if env else []), REPO.parent / "shared" / "data" / "loghub2k"]
    )
    for c in candidates:
        if (c / "HDFS" / "HDFS_2k.log").exists():
            return c
    sys.exit("Loghub 2k samples not found: pass --data DIR (the folder holding HDFS/, BGL/, …)")


def load(root: Path) -> dict[str, tuple[pl.Series, pl.Series, int]]:
    """system -> (contents, true EventIds, rejected lines), lines aligned with the structured CSV."""
    out = {}
    for name, fmt in shipped_formats().items():
        table, stats = read_format([root / name / f"{name}_2k.log"], fmt)
        truth = pl.read_csv(root / name / f"{name}_2k.log_structured.csv", infer_schema=False)
        if table.height != truth.height:
            sys.exit(f"{name}: {table.height} lines read but {truth.height} in the ground truth ({stats.summary()})")
        out[name] = (table["Content"], truth["EventId"], stats.rejected)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="folder holding the 16 system folders; default ../shared/data/loghub2k")
    ap.add_argument("--repeats", type=int, default=3, help="runs per side, interleaved; medians")
    ap.add_argument("--drain3-venv", default="/tmp/drain3-venv", type=Path)
    ap.add_argument("--out", default=REPO / "benchmarks" / "results" / "formats.json", type=Path)
    args = ap.parse_args()
    python = ensure_drain3(args.drain3_venv)
    data = load(find_loghub(args.data))
    formats = shipped_formats()
    ours: dict[str, list[float]] = {n: [] for n in data}
    theirs: dict[str, list[float]] = {n: [] for n in data}
    with tempfile.TemporaryDirectory(prefix="formats-bench-") as tmp:
        jobs = {}
        for name, (contents, _, _) in data.items():
            fmt = formats[name]
            lines = Path(tmp) / f"{name}.txt"
            lines.write_text("\n".join(contents.to_list()), encoding="utf-8")
            masks = [(m.pattern, re.sub(r"\$\{(\d+)\}", r"\\g<\1>", m.replacement)) for m in fmt.masks]
            jobs[name] = {"lines": str(lines), **fmt.miner.model_dump(), "max_children": MAX_CHILDREN, "masks": masks}
        (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
        (Path(tmp) / "driver.py").write_text(DRIVER)
        for r in range(args.repeats):  # interleaved, so both sides see the same noise
            our_ids = {}
            for name, (contents, _, _) in data.items():
                start = time.perf_counter()
                miner = TemplateMiner(**formats[name].miner_kwargs(), max_children=MAX_CHILDREN)
                our_ids[name] = (miner.fit_transform(contents), miner.templates_.height)
                ours[name].append(time.perf_counter() - start)
            res = Path(tmp) / "result.json"
            subprocess.run(
                [str(python), str(Path(tmp) / "driver.py"), str(Path(tmp) / "jobs.json"), str(res)], check=True
            )
            d3 = json.loads(res.read_text())
            for name in data:
                theirs[name].append(d3["systems"][name]["seconds"])
            if r == 0:
                first = (our_ids, d3)
    our_ids, d3 = first
    systems = {}
    for name, (contents, truth, rejected) in data.items():
        ids, n_templates = our_ids[name]
        d3_ids = pl.Series([str(i) for i in d3["systems"][name]["ids"]])
        once_ids = pl.Series([str(i) for i in d3["systems"][name]["distinct_ids"]])
        o, t = statistics.median(ours[name]), statistics.median(theirs[name])
        systems[name] = {
            "lines": len(contents), "rejected": rejected, "true_templates": truth.n_unique(),
            "params": formats[name].miner.model_dump(), "masks": [m.pattern for m in formats[name].masks],
            "logsieve": {"grouping_accuracy": grouping_accuracy(ids, truth), "templates": n_templates,
                         "median_s": o, "lines_per_s": len(contents) / o},
            "drain3": {"grouping_accuracy": grouping_accuracy(d3_ids, truth),
                       "templates": d3["systems"][name]["templates"], "median_s": t, "lines_per_s": len(contents) / t},
            "same_groups_as_drain3": grouping_accuracy(ids, d3_ids),
            "drain3_on_distinct_lines": {  # untimed diagnosis: Drain3 without re-routing repeated lines
                "grouping_accuracy": grouping_accuracy(once_ids, truth),
                "templates": d3["systems"][name]["distinct_templates"],
                "same_groups_as_logsieve": grouping_accuracy(once_ids, ids),
            },
            "masked_lines_identical": _same(d3["systems"][name]["masked"], formats[name].miner_kwargs(), contents),
        }  # fmt: skip
    acc_o = [s["logsieve"]["grouping_accuracy"] for s in systems.values()]
    acc_d = [s["drain3"]["grouping_accuracy"] for s in systems.values()]
    n_lines = sum(s["lines"] for s in systems.values())
    speed_o = n_lines / sum(statistics.median(v) for v in ours.values())
    speed_d = n_lines / sum(statistics.median(v) for v in theirs.values())
    summary = {
        "mean_accuracy_logsieve": statistics.mean(acc_o), "mean_accuracy_drain3": statistics.mean(acc_d),
        "worst_gap": min(a - b for a, b in zip(acc_o, acc_d, strict=True)),
        "lines_per_s_logsieve": speed_o, "lines_per_s_drain3": speed_d, "speed_ratio": speed_o / speed_d,
    }  # fmt: skip
    report = {
        "command": " ".join([Path(sys.executable).as_posix(), *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "polars": pl.__version__, "drain3": d3["version"]},
        "timing": "median wall time of masking + mining (no file reading, no start-up)",
        "data": "Loghub 2k samples (github.com/logpai/loghub; Zhu et al., ISSRE 2023)",
        "summary": summary,
        "systems": systems,
    }  # fmt: skip
    print(f"{'system':12s} {'ours':>7s} {'drain3':>7s} {'diff':>7s} {'ours l/s':>10s} {'drain3 l/s':>10s} {'tpl':>9s}")
    for name, s in systems.items():
        a, b = s["logsieve"], s["drain3"]
        print(f"{name:12s} {a['grouping_accuracy']:7.4f} {b['grouping_accuracy']:7.4f} "
              f"{a['grouping_accuracy'] - b['grouping_accuracy']:+7.4f} {a['lines_per_s']:10,.0f} "
              f"{b['lines_per_s']:10,.0f} {a['templates']:>4d}/{b['templates']:<4d} "
              f"masks agree {s['masked_lines_identical']:.3f}; drain3 on distinct lines: "
              f"{s['drain3_on_distinct_lines']['grouping_accuracy']:.4f}, "
              f"same groups as ours {s['drain3_on_distinct_lines']['same_groups_as_logsieve']:.4f}")  # fmt: skip
    print(f"{'mean':12s} {summary['mean_accuracy_logsieve']:7.4f} {summary['mean_accuracy_drain3']:7.4f} "
          f"worst gap {summary['worst_gap']:+.4f}; all lines: {speed_o:,.0f} vs {speed_d:,.0f} lines/s "
          f"({summary['speed_ratio']:.1f}x)")  # fmt: skip
    write_json(args.out, report)
    print(f"wrote {args.out}")


def _same(drain3_masked: list[str], miner_kwargs: dict, contents: pl.Series) -> float:
    """Share of lines both sides mask to the same string (1.0 = the same masks in both regex dialects)."""
    return float((pl.Series(drain3_masked) == TemplateMiner(**miner_kwargs).mask(contents)).mean())


if __name__ == "__main__":
    main()
