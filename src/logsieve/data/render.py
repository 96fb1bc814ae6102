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

from logsieve.data.simulate import LOG_START

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
    6: ("INFO", "dfs.DataNode$DataXceiver", "Received block {blk} src: /{peer}:{port} dest: /{node}:50010 of size {size}"),
    7: ("INFO", "dfs.DataNode$DataXceiver", "writeBlock {blk} received exception {exception}"),
    8: ("INFO", "dfs.DataNode$PacketResponder", "PacketResponder {responder} for block {blk} Interrupted."),
    9: ("INFO", "dfs.DataNode$PacketResponder", "Received block {blk} of size {size} from /{peer}"),
    10: ("INFO", "dfs.DataNode$PacketResponder", "PacketResponder {blk} {responder} Exception java.io.InterruptedIOException: "
         "Interruped while waiting for IO on channel java.nio.channels.SocketChannel[closed]. 0 millis timeout left."),
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
    20: ("WARN", "dfs.FSDataset", "Unexpected error trying to delete block {blk}. BlockInfo not found in volumeMap."),
    21: ("INFO", "dfs.FSDataset", "Deleting block {blk} file /mnt/hadoop/dfs/data/current/{subdir}{blk}"),
    22: ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.allocateBlock: {path}. {blk}"),
    23: ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.delete: {blk} is added to invalidSet of {node}:50010"),
    24: ("INFO", "dfs.FSNamesystem", "BLOCK* Removing block {blk} from neededReplications as it does not belong to any file."),
    25: ("INFO", "dfs.FSNamesystem", "BLOCK* ask {peer}:50010 to replicate {blk} to datanode(s) {node}:50010"),
    26: ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.addStoredBlock: blockMap updated: {node}:50010 is added to {blk} size {size}"),
    27: ("WARN", "dfs.FSNamesystem", "BLOCK* NameSystem.addStoredBlock: Redundant addStoredBlock request received for {blk} on "
         "{node}:50010 size {size}"),
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


def _cluster(rng: np.random.Generator, n: int = 203) -> np.ndarray:
    """DataNode IPs: the raw sample has 203 of them in 10.250.x.y and 10.251.x.y."""
    ips: set[str] = set()
    while len(ips) < n:
        ips.add(f"10.{rng.choice([250, 251], p=[0.2, 0.8])}.{rng.integers(0, 256)}.{rng.integers(1, 255)}")
    return np.array(sorted(ips))


def _replicas(rng: np.random.Generator, n_blocks: int, n_nodes: int) -> np.ndarray:
    """Four distinct DataNodes per block: three pipeline replicas and a replication target."""
    nodes = rng.integers(0, n_nodes, size=(n_blocks, 4))
    while (bad := np.flatnonzero((np.sort(nodes, axis=1)[:, 1:] == np.sort(nodes, axis=1)[:, :-1]).any(axis=1))).size:
        nodes[bad] = rng.integers(0, n_nodes, size=(len(bad), 4))
    return nodes


def _paths(rng: np.random.Generator, first_t: np.ndarray) -> np.ndarray:
    """allocateBlock paths: one MapReduce job per half hour writing part files of its tasks."""
    job = (first_t // 1800).astype(int)
    task = rng.integers(0, 400, size=len(first_t))
    stamp = {j: (LOG_START + timedelta(seconds=1800 * int(j))).strftime("%Y%m%d%H%M") for j in np.unique(job)}
    out = []
    for j, k in zip(job, task):
        kind = JOB_KINDS[j % len(JOB_KINDS)] + (str(j // len(JOB_KINDS)) if j >= len(JOB_KINDS) else "")
        phase = "r" if kind.startswith(("sortrand", "wcnt")) else "m"
        out.append(f"/user/root/{kind}/_temporary/_task_{stamp[j]}_{j + 1:04d}_{phase}_{k:06d}_0/part-{k:05d}")
    return np.array(out)


class Renderer:
    """Per-block facts (replica nodes, size, path) drawn once; ``lines`` turns timeline rows into text."""

    def __init__(self, blocks: pl.DataFrame, rows: pl.DataFrame, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 1])  # a stream of its own: sessions never depend on rendering
        n = blocks.height
        self.ips = _cluster(self.rng)
        self.nodes = _replicas(self.rng, n, len(self.ips))
        self.size = np.where(self.rng.random(n) < 0.94, FULL_SIZE, self.rng.integers(1, FULL_SIZE, size=n))
        first_t = rows.group_by("block").agg(pl.col("t").min()).sort("block")["t"].to_numpy()
        self.path = _paths(self.rng, first_t)
        self.blk = blocks["block_id"].to_numpy()

    def _field(self, name: str, df: pl.DataFrame) -> np.ndarray | pl.Series:
        """Values of one ``{field}`` for the lines in ``df`` (all of one event kind)."""
        b, occ, m = df["block"].to_numpy(), df["occ"].to_numpy(), df.height
        rng = self.rng
        if name == "blk":
            return df["blk"] if "blk" in df.columns else self.blk[b]
        if name == "node":  # n-th line of this kind in the block -> n-th replica (4th: replication target)
            return self.ips[self.nodes[b, occ % 4]]
        if name == "peer":  # the upstream node of the pipeline (or replication source)
            return self.ips[self.nodes[b, np.where(occ % 4 == 3, 0, np.maximum(occ % 4 - 1, 0))]]
        if name == "client":
            return self.ips[rng.integers(0, len(self.ips), size=m)]
        if name == "port":
            return rng.integers(32768, 61000, size=m).astype(str)
        if name == "size":
            return self.size[b].astype(str)
        if name == "responder":
            return (2 - occ % 3).astype(str)
        if name == "subdir":
            sub = rng.integers(0, 64, size=m)
            return np.where(sub < 2, "", "subdir" + sub.astype(str) + "/")
        if name == "path":
            return self.path[b]
        if name == "exception":
            kinds = list(EXCEPTIONS)
            return np.array(kinds)[rng.choice(len(kinds), size=m, p=list(EXCEPTIONS.values()))]
        if name in ("offset", "meta_offset"):
            off = rng.integers(1, 1024, size=m) * 65536
            return (off if name == "offset" else off // 128 + 7).astype(str)
        raise KeyError(name)

    def _messages(self, event: int, df: pl.DataFrame) -> pl.DataFrame:
        level, component, fmt = FORMATS[event]
        if event == 30:  # one "ask … to delete" line names every block of its batch
            df = df.with_columns(blk=pl.Series(self.blk[df["block"].to_numpy()]))
            df = df.group_by("line_no", maintain_order=True).agg(
                pl.col("ts", "pid", "block", "occ").first(), pl.col("blk").str.join(" ")
            )
        pieces: list[pl.Expr] = []
        fields = {}
        for literal, name, _, _ in string.Formatter().parse(fmt):
            if literal:
                pieces.append(pl.lit(literal))
            if name:
                if name not in fields:
                    fields[name] = pl.Series(name, self._field(name, df), pl.String)
                pieces.append(pl.col(name))
        df = df.with_columns(*fields.values()) if fields else df
        header = pl.concat_str([pl.col("ts"), pl.lit(" "), pl.col("pid").cast(pl.String), pl.lit(f" {level} {component}: ")])
        return df.select("line_no", line=pl.concat_str([header, *pieces]))

    def _pids(self, df: pl.DataFrame) -> np.ndarray:
        t, ev = df["t"].to_numpy(), df["event"].to_numpy()
        kind = np.array([PID_KIND.get(e, "worker") for e in range(31)], dtype=object)[ev]
        worker = (140 + 0.19 * t).astype(np.int64) + self.rng.integers(0, 80, size=len(t))
        namenode = self.rng.integers(26, 36, size=len(t))
        daemon = self.rng.integers(18, 20, size=len(t))
        return np.select([kind == "worker", kind == "namenode", kind == "daemon"], [worker, namenode, daemon], 13)

    def lines(self, rows: pl.DataFrame) -> pl.Series:
        """Text of the lines in ``rows`` (timeline rows with ``occ``), in file order."""
        sec = np.floor(rows["t"].to_numpy()).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, np.diff(sec) != 0])
        stamps = (pl.Series([LOG_START]) + pl.Series(sec[starts] * 1_000_000).cast(pl.Duration("us"))).dt.strftime(
            "%y%m%d %H%M%S"
        )
        df = rows.with_columns(ts=stamps.gather(np.cumsum(np.r_[True, np.diff(sec) != 0]) - 1), pid=self._pids(rows))
        parts = [self._messages(int(e), part) for (e,), part in sorted(df.partition_by("event", as_dict=True).items())]
        return pl.concat(parts).sort("line_no")["line"]


def write_log(blocks: pl.DataFrame, rows: pl.DataFrame, path: Path, seed: int = 0) -> Path:
    """Write the timeline as ``HDFS.log`` (atomically, in chunks of lines)."""
    rows = rows.with_columns(occ=pl.int_range(pl.len()).over("block", "event").cast(pl.Int64))
    renderer = Renderer(blocks, rows, seed)
    tmp = path.with_name(f".{path.name}.tmp")
    line_no = rows["line_no"].to_numpy()
    cuts = np.searchsorted(line_no, np.arange(0, line_no[-1] + CHUNK_LINES, CHUNK_LINES), side="right")
    with open(tmp, "wb") as fh:
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            if hi > lo:
                renderer.lines(rows.slice(lo, hi - lo)).to_frame().write_csv(fh, include_header=False, quote_style="never")
    tmp.replace(path)
    return path


def write_labels(blocks: pl.DataFrame, path: Path) -> Path:
    """``anomaly_label.csv`` as Loghub ships it: BlockId,Label with Normal/Anomaly."""
    tmp = path.with_name(f".{path.name}.tmp")
    blocks.select(
        BlockId="block_id", Label=pl.when(pl.col("label") == 1).then(pl.lit("Anomaly")).otherwise(pl.lit("Normal"))
    ).write_csv(tmp)
    tmp.replace(path)
    return path
