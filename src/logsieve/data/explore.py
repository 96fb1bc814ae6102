"""Data analysis before any model: class balance, lengths, event use per class, duplication, and how many
test sequences already occur verbatim in train. HDFS sessions repeat a lot, so a random split tests
mostly on sequences the model has seen; that is why random-split scores overstate real performance.

``summarize`` computes the figures (JSON-ready dict); ``write_report`` writes report.md, explore.json and
PNG plots atomically into an out dir; ``explore`` does both from a ``--data`` path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from logsieve.artifacts import atomic_write_bytes
from logsieve.config import DEFAULT_DATA
from logsieve.data.explore_plots import (
    CLASSES,
    plot_class_balance,
    plot_duplication,
    plot_events,
    plot_lengths,
    plot_overlap,
)
from logsieve.data.splits import SplitMethod, split_sessions
from logsieve.errors import LogsieveError
from logsieve.table import sequence_keys

if TYPE_CHECKING:
    from logsieve.parsing.options import ParseOptions


def _keyed(df: pl.DataFrame) -> pl.DataFrame:
    """Class name, sequence key (``table.sequence_keys``: the twins evaluation counts) and length per session."""
    label = pl.col("label")
    return df.select(
        pl.when(label == 1)
        .then(pl.lit("anomaly"))
        .when(label == 0)
        .then(pl.lit("normal"))
        .otherwise(pl.lit("unknown"))
        .alias("cls"),
        sequence_keys(df["events"], "sequence").alias("seq"),
        pl.col("events").list.len().alias("length"),
        "events",
    )


def _event_order(event: str) -> tuple[str, int, str]:
    """Natural order: E2 before E10."""
    m = re.fullmatch(r"(\D*)(\d+)", event)
    return (m.group(1), int(m.group(2)), "") if m else (event, -1, event)


def _share(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def compress(seq: str) -> str:
    """'E5 E5 E5 E22' -> 'E5×3 E22': readable sequences in the report."""
    out: list[str] = []
    for ev in seq.split(" "):
        if out and out[-1].split("×")[0] == ev:
            head, _, n = out[-1].partition("×")
            out[-1] = f"{head}×{int(n or 1) + 1}"
        else:
            out.append(ev)
    return " ".join(out)


# --- numbers --------------------------------------------------------------------------------------


def _sequences(t: pl.DataFrame) -> pl.DataFrame:
    """One row per distinct sequence with its count per class, most frequent first."""
    return (
        t.group_by("seq")
        .agg(pl.len().alias("count"), pl.first("length"), *((pl.col("cls") == c).sum().alias(c) for c in CLASSES))
        .sort(["count", "seq"], descending=[True, False])
    )


def _events(t: pl.DataFrame, counts: dict[str, int]) -> tuple[dict, dict]:
    """Per event and class: sessions containing it, share of the class, occurrences."""
    ev = t.with_row_index("i").select("i", "cls", "events").explode("events").drop_nulls("events")
    per = ev.group_by("cls", "events").agg(pl.len().alias("occurrences"), pl.col("i").n_unique().alias("sessions"))
    table: dict[str, dict] = {}
    for row in per.iter_rows(named=True):
        table.setdefault(row["events"], {})[row["cls"]] = {
            "sessions": row["sessions"],
            "share": _share(row["sessions"], counts[row["cls"]]),
            "occurrences": row["occurrences"],
        }
    table = {e: table[e] for e in sorted(table, key=_event_order)}
    only = {c: [e for e, v in table.items() if set(v) - {"unknown"} == {c}] for c in ("normal", "anomaly")}
    # how far the trivial rule "contains an event never seen in normal sessions" goes
    flagged = ev.filter(pl.col("events").is_in(only["anomaly"]) & (pl.col("cls") == "anomaly"))["i"].n_unique()
    only_info = {
        "anomaly": only["anomaly"],
        "normal": only["normal"],
        "anomalies_with_anomaly_only_event": flagged,
        "anomalies_with_anomaly_only_event_share": _share(flagged, counts.get("anomaly", 0)),
    }
    return table, only_info


def _overlap(df: pl.DataFrame, method: SplitMethod, seed: int, val_frac: float, test_frac: float) -> dict:
    """Share of test sessions whose exact sequence occurs in train, per class, and whether an exact-match
    lookup (majority label of that sequence in train, ties -> normal) would label them right."""
    train, val, test = split_sessions(df, method, val_frac, test_frac, seed)
    seen = (
        _keyed(train)
        .group_by("seq")
        .agg(((pl.col("cls") == "anomaly").sum() > (pl.col("cls") == "normal").sum()).alias("train_says_anomaly"))
    )
    t = _keyed(test).join(seen, on="seq", how="left")
    t = t.with_columns(pl.col("train_says_anomaly").is_not_null().alias("seen"))
    per_class = {}
    for c in CLASSES:
        part = t.filter(pl.col("cls") == c)
        if part.height == 0:
            continue
        hits = part.filter("seen")
        entry = {
            "test_sessions": part.height,
            "seen_in_train": hits.height,
            "seen_share": _share(hits.height, part.height),
            "unseen_share": _share(part.height - hits.height, part.height),
        }
        if c != "unknown":
            agree = hits.filter(pl.col("train_says_anomaly") == (c == "anomaly")).height
            entry["lookup_agrees_share"] = _share(agree, hits.height)
        per_class[c] = entry
    distinct = t.unique("seq")
    return {
        "method": method,
        "seed": seed,
        "val_frac": val_frac,
        "test_frac": test_frac,
        "train": train.height,
        "val": val.height,
        "test": test.height,
        "test_seen_share": _share(int(t["seen"].sum()), t.height),
        "test_distinct_sequences": distinct.height,
        "test_distinct_seen_share": _share(int(distinct["seen"].sum()), distinct.height),
        "per_class": per_class,
    }


def summarize(
    df: pl.DataFrame,
    *,
    split: SplitMethod = DEFAULT_DATA.split,
    seed: int = DEFAULT_DATA.split_seed,
    val_frac: float = DEFAULT_DATA.val_frac,
    test_frac: float = DEFAULT_DATA.test_frac,
    top: int = 10,
) -> dict:
    """All exploration figures for a session table, as a JSON-ready dict."""
    t = _keyed(df)
    found = dict(t["cls"].value_counts().iter_rows())
    counts = {c: found[c] for c in CLASSES if c in found}
    labelled = counts.get("normal", 0) + counts.get("anomaly", 0)

    lengths = t.group_by("cls").agg(
        pl.col("length").min().alias("min"),
        pl.col("length").median().alias("median"),
        pl.col("length").mean().round(2).alias("mean"),
        pl.col("length").quantile(0.95, "nearest").alias("p95"),
        pl.col("length").max().alias("max"),
    )
    length_stats = {r.pop("cls"): r for r in lengths.iter_rows(named=True)}

    events, only_in = _events(t, counts)
    seqs = _sequences(t)
    n = t.height
    both = seqs.filter((pl.col("normal") > 0) & (pl.col("anomaly") > 0))

    def rows(frame: pl.DataFrame) -> list[dict]:
        return [
            {"events": r["seq"], "length": r["length"], "count": r["count"], **{c: r[c] for c in counts}}
            for r in frame.iter_rows(named=True)
        ]

    sequences = {
        "distinct": seqs.height,
        "distinct_per_class": {c: int((seqs[c] > 0).sum()) for c in counts},
        "sessions_per_distinct": round(n / seqs.height, 3),
        "singletons": int((seqs["count"] == 1).sum()),
        "top1_share": _share(seqs["count"][0], n),
        f"top{top}_share": _share(int(seqs["count"].head(top).sum()), n),
        "top": rows(seqs.head(top)),
        "top_per_class": {
            c: rows(seqs.filter(pl.col(c) > 0).sort([c, "seq"], descending=[True, False]).head(3))
            for c in ("normal", "anomaly")
            if c in counts
        },
    }
    return {
        "sessions": n,
        "classes": counts,
        "anomaly_rate": _share(counts.get("anomaly", 0), labelled),
        "length": {c: length_stats[c] for c in counts},
        "events": events,
        "events_only_in": only_in,
        "sequences": sequences,
        "both_labels": {
            "sequences": both.height,
            "sessions": int(both["count"].sum()),
            "examples": rows(both.head(top)),
        },
        "split": _overlap(df, split, seed, val_frac, test_frac),
    }


# --- plots ----------------------------------------------------------------------------------------


def _table(header: list[str], body: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in body])


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def render_markdown(s: dict, source: str = "sessions") -> str:
    """report.md: the numbers with one sentence each on why they matter."""
    cls, seq, sp = list(s["classes"]), s["sequences"], s["split"]

    def seq_rows(rows: list[dict]) -> list[list[object]]:
        return [
            [i + 1, f"`{compress(r['events'])}`", r["length"], f"{r['count']:,}", *(r[c] for c in cls)]
            for i, r in enumerate(rows)
        ]

    def ev_cell(v: dict, c: str) -> str:
        got = v.get(c) or {"sessions": 0, "share": 0.0}
        return f"{got['sessions']:,} ({_pct(got['share'])})"

    ev_rows = [[e, *(ev_cell(v, c) for c in cls)] for e, v in s["events"].items()]
    only = s["events_only_in"]
    parts = [
        f"# Data exploration: {source}\n",
        f"{s['sessions']:,} sessions; anomaly rate {_pct(s['anomaly_rate'])} among labelled sessions.\n",
        "## Class balance\n",
        _table(["class", "sessions"], [[c, f"{n:,}"] for c, n in s["classes"].items()]),
        "\n![class balance](class_balance.png)\n",
        "## Sequence length\n",
        _table(["class", "min", "median", "mean", "p95", "max"], [[c, *s["length"][c].values()] for c in cls]),
        "\n![lengths](length_by_class.png)\n",
        "## Events per class\n",
        "Sessions of each class that contain the event (share of the class).\n",
        _table(["event", *cls], ev_rows),
        f"\nEvents seen only in anomalies: {', '.join(only['anomaly']) or 'none'}; they occur in "
        f"{only['anomalies_with_anomaly_only_event']:,} anomalous sessions "
        f"({_pct(only['anomalies_with_anomaly_only_event_share'])}), which a one-line rule already catches. "
        f"Events seen only in normal sessions: {', '.join(only['normal']) or 'none'}.\n",
        "![events](event_frequency.png)\n",
        "## Distinct sequences and duplication\n",
        f"{seq['distinct']:,} distinct sequences for {s['sessions']:,} sessions ({seq['sessions_per_distinct']} "
        f"sessions per sequence; per class: {', '.join(f'{c} {n:,}' for c, n in seq['distinct_per_class'].items())}). "
        f"The most frequent sequence alone is {_pct(seq['top1_share'])} of all sessions; "
        f"{seq['singletons']:,} sequences occur once.\n",
        _table(["#", "sequence", "length", "sessions", *cls], seq_rows(seq["top"])),
        "\n![duplication](duplication.png)\n",
        "## Sequences carrying both labels\n",
        f"{s['both_labels']['sequences']:,} sequence(s) occur with both labels ({s['both_labels']['sessions']:,} "
        "sessions): labels belong to blocks, not sequences, so no sequence model can get all of these right.\n",
    ]
    if s["both_labels"]["examples"]:
        parts.append(_table(["#", "sequence", "length", "sessions", *cls], seq_rows(s["both_labels"]["examples"])))
    parts += [
        f"\n## Train/test overlap ({sp['method']} split, seed {sp['seed']}, test {sp['test_frac']})\n",
        f"{_pct(sp['test_seen_share'])} of the {sp['test']:,} test sessions have an exact twin sequence in the "
        f"{sp['train']:,} training sessions ({_pct(sp['test_distinct_seen_share'])} of the "
        f"{sp['test_distinct_sequences']:,} distinct test sequences). On those, memorising train is enough, so "
        "scores on a random split overstate how a detector does on new behaviour; report the unseen subset too.\n",
        _table(
            ["class", "test sessions", "seen in train", "unseen", "lookup label agrees"],
            [
                [
                    c,
                    f"{v['test_sessions']:,}",
                    _pct(v["seen_share"]),
                    _pct(v["unseen_share"]),
                    _pct(v.get("lookup_agrees_share")),
                ]
                for c, v in sp["per_class"].items()
            ],
        ),
        "\n![overlap](train_test_overlap.png)\n",
    ]
    return "\n".join(parts)


def _write(path: Path, data: bytes | str) -> Path:
    """Atomic (unique temp file + rename): a crash never leaves a half-written report."""
    return atomic_write_bytes(path, data.encode() if isinstance(data, str) else data)


def write_report(df: pl.DataFrame, summary: dict, out: str | Path, source: str = "sessions") -> list[Path]:
    """report.md, explore.json and five PNG plots in ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LogsieveError(f"{out}: exists and is not a directory (--out needs a folder)")
    out.mkdir(parents=True, exist_ok=True)
    t = _keyed(df)
    figures = {
        "class_balance.png": plot_class_balance(summary),
        "length_by_class.png": plot_lengths(t),
        "event_frequency.png": plot_events(summary),
        "duplication.png": plot_duplication(t),
        "train_test_overlap.png": plot_overlap(summary),
    }
    paths = [_write(out / name, png) for name, png in figures.items()]
    paths.append(_write(out / "explore.json", json.dumps({"source": source, **summary}, indent=1) + "\n"))
    paths.append(_write(out / "report.md", render_markdown(summary, source)))
    return paths


@dataclass(frozen=True)
class ExploreResult:
    summary: dict
    paths: list[Path]


def explore(
    data: str | Path,
    out: str | Path,
    *,
    split: SplitMethod = DEFAULT_DATA.split,
    seed: int = DEFAULT_DATA.split_seed,
    labels: str | Path | None = None,
    raw: ParseOptions | None = None,
) -> ExploreResult:
    """Load ``data`` (any ``--data``, ``labels`` joined if given, raw logs parsed as ``raw`` says), compute the
    figures, write the report."""
    from logsieve.data.load import load_data

    df = load_data(data, labels, raw)
    summary = summarize(df, split=split, seed=seed)
    return ExploreResult(summary, write_report(df, summary, out, source=Path(data).name))
