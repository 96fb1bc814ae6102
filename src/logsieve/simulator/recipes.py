"""Block life-cycles of HDFS as data: which lines a block produces, in which orders, how often and when.

A ``Recipe`` is one kind of block session (a normal life-cycle or one anomaly kind) built from ``Part`` s; the
simulator draws a recipe per block, a variant and repeat count per part, and times every line. The session's
event order is then simply the time order of its lines, exactly as a parser of the log would see it.

Where the numbers come from: counts measured on the public Loghub HDFS_v1 samples (``sessions_sample.csv.gz``:
89,318 normal / 2,691 anomalous sessions; ``raw/hdfs_sample_2pct.log.gz`` for timings, pids and line shapes).
E.g. the write part's orders are the first four events of the normal sessions (34 % ``E5 E5 E5 E22``), the serve
repeat counts are the E3/E4 group counts per normal session, and the anomaly weights are the shares of the anomalous
sessions containing each kind's marker event (E7 19 %, E20 30 %, E25 21 %, E28 8 %, E27 5 %, E13 3 %, ...).
E30 (``BLOCK* ask … to delete blk… blk…``) is absent from the Loghub sessions but present in the raw log family;
we emit it rarely so that some lines name several blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

LOG_START = datetime(2008, 11, 9, 20, 35, 18)  # HDFS_v1 starts 081109 203518
ANCHORS = ("alloc", "finish", "middle", "delete")  # see Part.anchor; the simulator times them per block


@dataclass(frozen=True)
class Part:
    """One step of a life-cycle: alternative event orders (``|`` = a pause, "" = the step is skipped)."""

    variants: dict[str, float]
    anchor: str = "alloc"  # alloc: allocation; finish: write done; middle: between finish and delete; delete
    offset: tuple[float, float] = (0.0, 0.0)  # uniform delay after the anchor (s)
    gap: float = 0.05  # mean time between consecutive lines of the part (s, exponential)
    pause: tuple[float, float] = (0.5, 6.0)  # delay at a "|" (s, uniform)
    repeat: dict[int, float] = field(default_factory=lambda: {1: 1.0})  # occurrences, each freshly anchored

    def __post_init__(self) -> None:
        if self.anchor not in ANCHORS:
            raise ValueError(f"unknown anchor {self.anchor!r}; expected one of {ANCHORS}")


@dataclass(frozen=True)
class Recipe:
    name: str
    label: int  # 0 normal, 1 anomaly
    weight: float  # relative frequency within its class
    parts: tuple[Part, ...]


# --- building blocks ------------------------------------------------------------------------------------------
# write: 3 DataNodes start receiving (E5) around the NameNode's allocateBlock (E22)
WRITE = Part({"E5 E5 E5 E22": 0.340, "E22 E5 E5 E5": 0.253, "E5 E22 E5 E5": 0.212, "E5 E5 E22 E5": 0.193}, gap=0.8)
# finish: each DataNode's PacketResponder terminates (E11) and reports the size (E9); NameNode updates blockMap (E26)
_R, _S = "E11 E9", "E26"
FINISH = Part(
    {
        f"{_R} {_R} {_R} {_S} {_S} {_S}": 0.640,
        f"{_S} {_S} {_S} {_R} {_R} {_R}": 0.134,
        f"{_R} {_R} {_S} {_S} {_R} {_S}": 0.069,
        f"{_R} {_S} {_R} {_R} {_S} {_S}": 0.043,
        f"{_R} {_R} {_S} {_R} {_S} {_S}": 0.021,
        f"{_R} {_R} {_S} {_S} {_S} {_R}": 0.018,
        f"{_S} {_S} {_R} {_R} {_R} {_S}": 0.015,
        f"{_S} {_S} {_R} {_R} {_S} {_R}": 0.012,
        f"{_S} {_R} {_R} {_R} {_S} {_S}": 0.011,
    },
    "finish",
    gap=0.08,
)


def serve(repeat: dict[int, float]) -> Part:
    """Reads: clients are served the block (E3) or the connection breaks (E4), in groups of three."""
    groups = {"E3 E3 E4": 0.45, "E4 E3 E4": 0.25, "E4 E4 E3": 0.2, "E3 E4 E3": 0.1}
    return Part(groups, "middle", gap=1.0, repeat=repeat)


def verify(repeat: dict[int, float]) -> Part:
    """The DataBlockScanner checks the replica (E2); reads and scans go together in the real data."""
    return Part({"E2": 1.0}, "middle", repeat=repeat)


# delete: NameNode puts the block in 3 invalidSets (E23), later each DataNode deletes its file (E21); a few
# deletions are announced by a multi-block "ask … to delete" (E30). DELETE: 19 % of blocks outlive the log.
_DEL = {"E23 E23 E23 | E21 E21 E21": 0.97, "E23 E23 E23 E30 | E21 E21 E21": 0.03}
DELETE_ALL = Part(_DEL, "delete", gap=0.002, pause=(0.5, 4.0))
DELETE = Part({**{k: v * 0.81 for k, v in _DEL.items()}, "": 0.19}, "delete", gap=0.002, pause=(0.5, 4.0))
# replication of an under-replicated block: ask (E25), transfer thread (E18), receive (E5), transmitted (E16),
# received (E6), blockMap updates (E26) and the surplus replica deleted (E21)
REPLICATE = Part(
    {
        "E25 E18 E5 E16 E6 E26 E26 E21": 0.55,
        "E25 E18 E5 E6 E16 E26 E26 E21": 0.40,
        "E18 E25 E5 E6 E16 E26 E26 E21": 0.05,
    },
    "middle",
    gap=0.6,
)
# repeat counts of reads / scans per class, measured on deleted blocks of the real sample
# (and per anomaly kind below: e.g. blocks hit by E28 were read a lot, E13 blocks never)
ANOMALY_READS = (serve({0: 0.666, 1: 0.157, 2: 0.086, 3: 0.059, 4: 0.027, 5: 0.005, 67: 0.001}),
                 verify({0: 0.807, 1: 0.118, 2: 0.042, 3: 0.033}))  # fmt: skip
REPLICATION_READS = (serve({0: 0.616, 1: 0.175, 2: 0.193, 3: 0.005, 5: 0.009, 67: 0.002}),
                     verify({0: 0.751, 1: 0.144, 2: 0.063, 3: 0.041}))  # fmt: skip
E20_MAYBE = Part({"E20": 0.25, "": 0.75}, "delete", offset=(0.5, 8.0))


def reads(serves: dict[int, float], scans: dict[int, float]) -> tuple[Part, Part]:
    """The middle of a life-cycle: how many read groups and scans (their joint pattern differs per kind)."""
    return serve(serves), verify(scans)


def _with(*extra: Part, write: Part = WRITE, finish: Part = FINISH, delete: Part = DELETE_ALL,
          middle: tuple[Part, ...] = ANOMALY_READS) -> tuple[Part, ...]:  # fmt: skip
    """A full anomalous life-cycle with extra parts (the anomaly's marker lines) and optionally other steps."""
    return (write, finish, *middle, delete, *extra)


NORMAL_DELETED = 0.8134  # share of normal blocks deleted within the log
RECIPES: tuple[Recipe, ...] = (
    # --- normal life-cycles (reads and scans drawn jointly, as measured) ---
    Recipe(
        "deleted_unread", 0, NORMAL_DELETED * 0.712, (WRITE, FINISH, verify({0: 0.93, 1: 0.064, 2: 0.006}), DELETE_ALL)
    ),
    Recipe(
        "deleted_read_once",
        0,
        NORMAL_DELETED * 0.151,
        (WRITE, FINISH, serve({1: 1.0}), verify({0: 0.39, 1: 0.29, 2: 0.14, 3: 0.17, 4: 0.001}), DELETE_ALL),
    ),
    Recipe(
        "deleted_read_often",
        0,
        NORMAL_DELETED * 0.137,
        (
            WRITE,
            FINISH,
            serve({2: 0.42, 3: 0.25, 4: 0.245, 5: 0.045, 67: 0.0007}),
            verify({0: 0.83, 1: 0.17}),
            DELETE_ALL,
        ),
    ),
    Recipe("still_stored", 0, 1 - NORMAL_DELETED, (WRITE, FINISH, verify({0: 0.946, 1: 0.054}))),
    Recipe("re_replicated", 0, 0.003, (WRITE, FINISH, REPLICATE, verify({0: 0.9, 1: 0.1}))),
    Recipe("phantom_delete", 0, 0.0003, _with(Part({"E20": 1.0}, "delete", offset=(0.5, 8.0)))),  # real: 0.03 %
    # --- anomalies: "missing event" kinds (only normal events) ---
    Recipe("write_abandoned", 1, 0.176, (Part({"E5 E22": 0.55, "E22 E5": 0.45}, gap=0.8),)),
    Recipe(
        "responder_missing",
        1,
        0.015,
        _with(
            finish=Part(
                {f"{_R} {_R} {_S} {_S} {_S}": 0.5, f"{_R} {_R} {_S} {_S}": 0.3, f"E11 {_R} {_R} {_S} {_S}": 0.2},
                "finish",
                gap=0.08,
            )
        ),
    ),  # fmt: skip
    # --- anomalies with marker events ---
    Recipe(
        "write_exception",
        1,
        0.191,
        (Part({"E22 E5 E5 E7": 0.45, "E5 E5 E22 E7": 0.37, "E5 E22 E5 E7": 0.18}, gap=0.8),),
    ),  # fmt: skip
    Recipe(
        "delete_missing_block",
        1,
        0.24,
        _with(
            Part({"E20": 1.0}, "delete", offset=(0.5, 8.0)),
            middle=reads(
                {0: 0.77, 1: 0.117, 2: 0.034, 3: 0.067, 4: 0.008, 5: 0.003}, {0: 0.866, 1: 0.087, 2: 0.025, 3: 0.022}
            ),
        ),
    ),  # fmt: skip
    Recipe(
        "under_replicated",
        1,
        0.10,
        _with(
            Part(REPLICATE.variants, "middle", gap=0.6, repeat={1: 0.8, 2: 0.2}), E20_MAYBE, middle=REPLICATION_READS
        ),
    ),  # fmt: skip
    Recipe(
        "under_replicated_lost",
        1,
        0.08,
        _with(
            Part(
                {"E25 E18 E5 E6 E16 E26 E26": 0.5, "E25 E18 E5 E16 E6 E26 E26": 0.4, "E25 E5 E18 E6 E16 E26": 0.1},
                "middle",
                gap=0.6,
            ),
            E20_MAYBE,
            finish=Part({f"{_R} {_R} {_R} {_S} {_S}": 0.7, f"{_S} {_S} {_R} {_R} {_R}": 0.3}, "finish", gap=0.08),
            delete=Part({"E23 E23 E23 E23 | E21 E21 E21 E21": 1.0}, "delete", gap=0.002, pause=(0.5, 4.0)),
            middle=REPLICATION_READS,
        ),
    ),  # fmt: skip
    Recipe(
        "stored_after_delete",
        1,
        0.075,
        _with(  # one incident: mostly E22-first writes, E26-first finishes
            Part({"E28 E26": 1.0}, "delete", offset=(2.0, 6.0), gap=0.01),
            write=Part({"E22 E5 E5 E5": 0.6, "E5 E5 E5 E22": 0.3, "E5 E22 E5 E5": 0.1}, gap=0.8),
            finish=Part({" ".join([_S] * 3 + [_R] * 3): 0.6, " ".join([_R] * 3 + [_S] * 3): 0.4}, "finish", gap=0.08),
            middle=reads(
                {0: 0.305, 1: 0.3, 2: 0.023, 3: 0.192, 4: 0.174, 5: 0.005}, {0: 0.69, 1: 0.188, 2: 0.056, 3: 0.066}
            ),
        ),
    ),  # fmt: skip
    Recipe(
        "redundant_store",
        1,
        0.05,
        _with(
            Part({"E27": 1.0}, "finish", offset=(0.0, 0.25)),
            delete=DELETE,
            middle=reads({0: 0.823, 1: 0.092, 2: 0.035, 3: 0.035, 4: 0.014}, {0: 0.915, 1: 0.071, 2: 0.014}),
        ),
    ),
    Recipe(
        "empty_packets",
        1,
        0.03,
        _with(
            finish=Part(
                {
                    "E13 E11 E9 E13 E11 E9 E13 E11 E9 E26 E26 E26": 0.8,
                    "E26 E26 E26 E13 E11 E9 E13 E11 E9 E13 E11 E9": 0.2,
                },
                "finish",
                gap=0.08,
            ),
            delete=DELETE,
            middle=reads({0: 1.0}, {0: 0.889, 1: 0.074, 2: 0.025, 3: 0.012}),
        ),
    ),  # fmt: skip
    # a pipeline breaks while writing: responder exceptions (E10), receiveBlock failures (E14, E7), interrupts (E8),
    # recovery with offset changes (E15) and mirror errors (E12); then re-replicated, or abandoned
    Recipe(
        "pipeline_broken",
        1,
        0.004,
        (
            WRITE,
            Part(
                {
                    "E11 E10 E14 E7 E11 E10 E14 E7 E8 E11 E15 E5 E14 E7 E15 E5 | E11 E9 E11 E9 E26 E26": 0.6,
                    "E14 E7 E11 E10 E15 E5 E12 E14 E7 E11 E10 E14 E7 E8 E11 E5 E15 | E11 E9 E11 E9 E26 E26": 0.4,
                },
                "finish",
                gap=0.4,
                pause=(5.0, 40.0),
            ),
            Part({"E25 E18 E5 E16 E6 E26": 1.0}, "middle", gap=0.6),
            *ANOMALY_READS,
            DELETE_ALL,
        ),
    ),  # fmt: skip
    Recipe("pipeline_abandoned", 1, 0.001, (WRITE, Part({"E11 E10 E14 E7 E8 E11 E14 E7": 1.0}, "finish", gap=0.4))),
    Recipe(
        "replication_timeout",
        1,
        0.003,
        _with(Part({"E25 E18 E26 | E29": 1.0}, "middle", gap=0.6, pause=(300.0, 310.0)), REPLICATE),
    ),
    Recipe("transfer_failed", 1, 0.001, _with(Part({"E25 E18 E5 E7 E17 E26": 1.0}, "middle", gap=0.6))),
    Recipe("replica_unneeded", 1, 0.0005, _with(Part({"E25 E18 E5 E24 E16 E6 E26 E26 E21": 1.0}, "middle", gap=0.6))),
)


def weighted_choice(rng: np.random.Generator, table: dict, size: int) -> np.ndarray:
    """Indices into ``table`` drawn with its (unnormalised) weights."""
    w = np.fromiter(table.values(), float)
    return rng.choice(len(w), size=size, p=w / w.sum())
