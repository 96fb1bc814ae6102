"""Render a simulated timeline as raw HDFS log lines, vectorised: one polars string expression per event kind.

Line shapes, components, levels, pids, IP ranges, ports, sizes and paths follow the real lines of
``raw/hdfs_sample_2pct.log.gz`` (Loghub HDFS_v1); every message is written to be matched by its loghub template
(``templates.csv``, first match wins). Rendering draws from its own random stream, so it never changes sessions.
"""

from __future__ import annotations

import string
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from logsieve.artifacts import atomic_file
from logsieve.simulator.recipes import LOG_START, weighted_choice

CHUNK_LINES = 1_000_000
FULL_SIZE = 67_108_864  # 64 MB: 94 % of the sizes in the raw sample
JOB_KINDS = ("rand", "randtxt", "sortrand", "randtxt", "rand", "wcnt")  # /user/root/<kind>N/... in the raw sample
EXCEPTIONS = {  # writeBlock ... received exception (E7) in the raw sample
    "java.io.IOException: Could not read from stream": 0.94,
    "java.io.IOException: Connection reset by peer": 0.02,
    "java.io.EOFException": 0.02,
    "java.io.IOException: Interrupted receiveBlock": 0.02,
}

# event -> (level, component, message); {fields} are filled per line (see _field)
FORMATS: dict[int, tuple[str, str, str]] = {
    1: ("WARN", "dfs.DataNode", "{node}:50010:Adding an already existing block {blk}"),
    2: ("INFO", "dfs.DataBlockScanner", "Verification succeeded for {blk}"),
    3: ("INFO", "dfs.DataNode$DataXceiver", "{node}:50010 Served block {blk} to /{client}"),
    4: ("WARN", "dfs.DataNode$DataXceiver", "{node}:50010:Got exception while serving {blk} to /{client}:"),
    5: ("INFO", "dfs.DataNode$DataXceiver", "Receiving block {blk} src: /{peer}:{port} dest: /{node}:50010"),
    6: ("INFO", "dfs.DataNode$DataXceiver",
        "Received block {blk} src: /{peer}:{port} dest: /{node}:50010 of size {size}"),
    7: ("INFO", "dfs.DataNode$DataXceiver", "writeBlock {blk} received exception {exception}"),
    8: ("INFO", "dfs.DataNode$PacketResponder", "PacketResponder {responder} for block {blk} Interrupted."),
    9: ("INFO", "dfs.DataNode$PacketResponder", "Received block {blk} of size {size} from /{peer}"),
    10: ("INFO", "dfs.DataNode$PacketResponder",
         "PacketResponder {blk} {responder} Exception java.io.InterruptedIOException: Interruped while waiting for IO "
         "on channel java.nio.channels.SocketChannel[closed]. 0 millis timeout left."),
    11: ("INFO", "dfs.DataNode$PacketResponder", "PacketResponder {responder} for block {blk} terminating"),
    12: ("INFO", "dfs.DataNode$BlockReceiver", "{node}:50010:Exception writing block {blk} to mirror {peer}:50010"),
    13: ("INFO", "dfs.DataNode$BlockReceiver", "Receiving empty packet for block {blk}"),
    14: ("INFO", "dfs.DataNode$BlockReceiver", "Exception in receiveBlock for block {blk} {exception}"),
    15: ("INFO", "dfs.DataNode$BlockReceiver",
         "Changing block file offset of block {blk} from 0 to {offset} meta file offset to {meta_offset}"),
    16: ("INFO", "dfs.DataNode$DataTransfer", "{peer}:50010:Transmitted block {blk} to /{node}:50010"),
    17: ("WARN", "dfs.DataNode", "{peer}:50010:Failed to transfer {blk} to {node}:50010 got java.net.SocketException: "
         "Connection reset"),
    18: ("INFO", "dfs.DataNode", "{peer}:50010 Starting thread to transfer block {blk} to {node}:50010"),
    19: ("INFO", "dfs.FSDataset", "Reopen Block {blk}"),
    20: ("WARN", "dfs.FSDataset", "Unexpected error trying to delete block {blk}. BlockInfo not found in volumeMap."),
    21: ("INFO", "dfs.FSDataset", "Deleting block {blk} file /mnt/hadoop/dfs/data/current/{subdir}{blk}"),
    22: ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.allocateBlock: {path}. {blk}"),
    23: ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.delete: {blk} is added to invalidSet of {node}:50010"),
    24: ("INFO", "dfs.FSNamesystem",
         "BLOCK* Removing block {blk} from neededReplications as it does not belong to any file."),
    25: ("INFO", "dfs.FSNamesystem", "BLOCK* ask {peer}:50010 to replicate {blk} to datanode(s) {node}:50010"),
    26: ("INFO", "dfs.FSNamesystem",
         "BLOCK* NameSystem.addStoredBlock: blockMap updated: {node}:50010 is added to {blk} size {size}"),
    27: ("WARN", "dfs.FSNamesystem",
         "BLOCK* NameSystem.addStoredBlock: Redundant addStoredBlock request received for {blk} on {node}:50010 "
         "size {size}"),
    28: ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.addStoredBlock: addStoredBlock request received for {blk} on "
         "{node}:50010 size {size} But it does not belong to any file."),
    29: ("WARN", "dfs.PendingReplicationMonitor", "PendingReplicationMonitor timed out block {blk}"),
    30: ("INFO", "dfs.FSNamesystem", "BLOCK* ask {node}:50010 to delete  {blk}"),
}  # fmt: skip
# which pid a line gets (raw sample): NameNode handlers 26-35, its "ask" lines and DataNode daemons 18-19, the
# block scanner 13; DataNode worker threads are numbered upwards over the log (147 -> 26,810)
PID_KIND = {e: {"dfs.FSNamesystem": "namenode", "dfs.FSDataset": "daemon", "dfs.DataNode": "daemon",
                "dfs.PendingReplicationMonitor": "daemon", "dfs.DataBlockScanner": "scanner"}.get(f[1], "worker")
            for e, f in FORMATS.items()} | {25: "daemon", 30: "daemon"}  # fmt: skip


def _cluster(rng: np.random.Generator, n: int = 203) -> pl.Series:
    """DataNode IPs: the raw sample has 203 of them in 10.250.x.y and 10.251.x.y."""
    ips: set[str] = set()
    while len(ips) < n:
        ips.add(f"10.{rng.choice([250, 251], p=[0.2, 0.8])}.{rng.integers(0, 256)}.{rng.integers(1, 255)}")
    return pl.Series(sorted(ips))


def _replicas(rng: np.random.Generator, n_blocks: int, n_nodes: int) -> np.ndarray:
    """Four distinct DataNodes per block: three pipeline replicas and a replication target."""
    nodes = rng.integers(0, n_nodes, size=(n_blocks, 4))
    while (bad := np.flatnonzero((np.diff(np.sort(nodes, axis=1), axis=1) == 0).any(axis=1))).size:
        nodes[bad] = rng.integers(0, n_nodes, size=(len(bad), 4))
    return nodes


def _paths(rng: np.random.Generator, alloc: np.ndarray) -> pl.Series:
    """allocateBlock paths: one MapReduce job per half hour writing the part files of its tasks."""
    job = (alloc // 1800).astype(np.int64)
    jobs = np.unique(job)
    stamp = [(LOG_START + timedelta(seconds=1800 * int(j))).strftime("%Y%m%d%H%M") for j in jobs]
    kind = [JOB_KINDS[j % len(JOB_KINDS)] + (str(j // len(JOB_KINDS)) if j >= len(JOB_KINDS) else "") for j in jobs]
    phase = ["r" if k.startswith(("sortrand", "wcnt")) else "m" for k in kind]
    prefix = pl.Series([f"/user/root/{k}/_temporary/_task_{s}_{j + 1:04d}_{p}_"
                        for k, s, j, p in zip(kind, stamp, jobs, phase, strict=True)])  # fmt: skip
    task = pl.Series(rng.integers(0, 400, size=len(alloc)))
    return pl.select(pl.concat_str(
        prefix.gather(np.searchsorted(jobs, job)), task.cast(pl.String).str.zfill(6), pl.lit("_0/part-"),
        task.cast(pl.String).str.zfill(5),
    )).to_series()  # fmt: skip


REPLICATION_EVENTS = (6, 16, 17, 18, 24, 25)  # {node} = the new replica, {peer} = the replica copied from


def roles(event: int, occ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of a block's four DataNodes a line names as {node} and {peer}: the n-th line of a kind in a block is
    about the n-th replica (the 4th is the replication target), its peer the upstream node of the write pipeline."""
    if event in REPLICATION_EVENTS:
        return np.full_like(occ, 3), occ % 3
    if event == 12:  # a pipeline node failing to write to its downstream mirror
        return occ % 3, occ % 3 + 1
    replica = occ % 4
    return replica, np.where(replica == 3, 0, np.maximum(replica - 1, 0))


SUBDIRS = pl.Series(["", ""] + [f"subdir{i}/" for i in range(2, 64)])  # ~3 % of block files sit in current/ itself
PID_CODE = {"worker": 0, "namenode": 1, "daemon": 2, "scanner": 3}


class Renderer:
    """Per-block facts (replica nodes, size, path) drawn once; ``lines`` turns timeline rows into text."""

    def __init__(self, blocks: pl.DataFrame, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 1])  # a stream of its own: sessions never depend on rendering
        n = blocks.height
        self.ips = _cluster(self.rng)
        self.nodes = _replicas(self.rng, n, len(self.ips))
        self.size = np.where(self.rng.random(n) < 0.94, FULL_SIZE, self.rng.integers(1, FULL_SIZE, size=n))
        self.path = _paths(self.rng, blocks["alloc"].to_numpy())
        self.blk = blocks["block_id"]

    def _field(self, name: str, df: pl.DataFrame) -> pl.Series:
        """Values of one ``{field}`` for the lines in ``df`` (all of one event kind)."""
        if name == "blk" and "blk" in df.columns:  # multi-block lines come with their block list
            return df["blk"]
        b, occ, m, rng = df["block"].to_numpy(), df["occ"].to_numpy(), df.height, self.rng
        node, peer = roles(int(df["event"][0]), occ)
        texts = {
            "blk": lambda: self.blk.gather(b),
            "node": lambda: self.ips.gather(self.nodes[b, node]),
            "peer": lambda: self.ips.gather(self.nodes[b, peer]),
            "client": lambda: self.ips.gather(rng.integers(0, len(self.ips), size=m)),
            "subdir": lambda: SUBDIRS.gather(rng.integers(0, len(SUBDIRS), size=m)),
            "path": lambda: self.path.gather(b),
            "exception": lambda: pl.Series(list(EXCEPTIONS)).gather(weighted_choice(rng, EXCEPTIONS, m)),
        }
        numbers = {
            "port": lambda: rng.integers(32768, 61000, size=m),
            "size": lambda: self.size[b],
            "responder": lambda: 2 - occ % 3,
            "offset": lambda: rng.integers(1, 1024, size=m) * 65536,
            "meta_offset": lambda: rng.integers(1, 1024, size=m) * 512 + 7,
        }
        return texts[name]() if name in texts else pl.Series(numbers[name]()).cast(pl.String)

    def _messages(self, event: int, df: pl.DataFrame) -> pl.DataFrame:
        level, component, fmt = FORMATS[event]
        if event == 30:  # one "ask … to delete" line names every block of its batch
            df = df.with_columns(blk=self.blk.gather(df["block"].to_numpy()))
            df = df.group_by("line_no", maintain_order=True).agg(
                pl.col("ts", "pid", "block", "occ", "event").first(), pl.col("blk").str.join(" ")
            )
        pieces: list[pl.Expr] = []
        fields: dict[str, pl.Series] = {}
        for literal, name, _, _ in string.Formatter().parse(fmt):
            if literal:
                pieces.append(pl.lit(literal))
            if name:
                if name not in fields:
                    fields[name] = self._field(name, df).alias(name)
                pieces.append(pl.col(name))
        header = [pl.col("ts"), pl.lit(" "), pl.col("pid").cast(pl.String), pl.lit(f" {level} {component}: ")]
        return df.with_columns(*fields.values()).select("line_no", line=pl.concat_str(header + pieces))

    def _pids(self, t: np.ndarray, event: np.ndarray) -> np.ndarray:
        kind = np.array([PID_CODE[PID_KIND.get(e, "worker")] for e in range(31)], np.int8)[event]
        worker = (140 + 0.19 * t).astype(np.int64) + self.rng.integers(0, 80, size=len(t))
        namenode = self.rng.integers(26, 36, size=len(t))
        daemon = self.rng.integers(18, 20, size=len(t))
        return np.choose(kind, [worker, namenode, daemon, np.full(len(t), 13)])

    def lines(self, rows: pl.DataFrame) -> pl.Series:
        """Text of the lines in ``rows`` (timeline rows with ``occ``), in file order."""
        t = rows["t"].to_numpy()
        sec = np.floor(t).astype(np.int64)
        new = np.r_[True, np.diff(sec) != 0]
        stamps = (pl.Series([LOG_START]) + pl.Series(sec[new] * 1_000_000).cast(pl.Duration("us"))).dt.strftime(
            "%y%m%d %H%M%S"
        )
        df = rows.with_columns(ts=stamps.gather(np.cumsum(new) - 1), pid=self._pids(t, rows["event"].to_numpy()))
        parts = [self._messages(int(e), part) for (e,), part in sorted(df.partition_by("event", as_dict=True).items())]
        return pl.concat(parts).sort("line_no")["line"]


def occurrences(block: np.ndarray, event: np.ndarray) -> np.ndarray:
    """For each row: how many earlier rows have the same block and event (0, 1, 2, ...)."""
    key = block.astype(np.int64) * 32 + event
    order = np.argsort(key, kind="stable")
    k = key[order]
    start = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    run = np.repeat(start, np.diff(np.r_[start, len(k)]))
    occ = np.empty(len(k), np.int64)
    occ[order] = np.arange(len(k)) - run
    return occ


def write_log(blocks: pl.DataFrame, rows: pl.DataFrame, path: Path, seed: int = 0) -> Path:
    """Write the timeline as ``HDFS.log`` (atomically, in chunks of lines)."""
    rows = rows.with_columns(occ=occurrences(rows["block"].to_numpy(), rows["event"].to_numpy()))
    renderer = Renderer(blocks, seed)
    line_no = rows["line_no"].to_numpy()
    cuts = np.searchsorted(line_no, np.arange(0, line_no[-1] + CHUNK_LINES, CHUNK_LINES), side="right")
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            if hi > lo:
                text = renderer.lines(rows.slice(lo, hi - lo)).to_frame()
                text.write_csv(fh, include_header=False, quote_style="never")
    return path


def write_labels(blocks: pl.DataFrame, path: Path) -> Path:
    """``anomaly_label.csv`` as Loghub ships it: BlockId,Label with Normal/Anomaly."""
    labels = blocks.select(
        BlockId="block_id", Label=pl.when(pl.col("label") == 1).then(pl.lit("Anomaly")).otherwise(pl.lit("Normal"))
    )
    with atomic_file(path) as tmp:
        labels.write_csv(tmp)
    return path
