"""``watch --state``: a registry of file positions and open sessions that survives ``kill -9``.

Commit protocol (the order is the guarantee):

1. alerts of closed sessions are appended to the output file, each line written and flushed;
2. at a checkpoint (every few seconds, after sessions close on a quiet log, at exit) the output file is
   fsync'ed and its size taken; then ONE state file is written atomically (temp file, fsync, rename) holding
   the input positions of the last merged piece, the open sessions as of that piece, the line count and newest
   log time, the ids still to skip (below), and the output file's size (``out_offset``).

A restart reads the state, resumes each input at its position (``tail.FileFollower`` finds a file rotated
meanwhile by inode) and so re-reads exactly the lines after the checkpoint, rebuilding the same sessions.
Records written after the checkpoint are found in the output file after ``out_offset`` (a torn last line, from
a crash mid-write, is cut off first); when replay closes those sessions again they are not written a second
time (a multiset of session ids, kept in the state until replay meets them: a block id may come twice).
Hence with ``--out FILE`` every record is written exactly once across crashes: none lost (its lines are
re-read or its session is in the state), none twice (it is skipped). Replay is exact for a single input and
for closing by log time and ``--max-open``; closing by wall time (a quiet log) is checkpointed at once, so only
a crash within that instant could close a session differently. To stdout, which cannot be read back, the
records written between the last checkpoint and a crash are written again: at least once.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from logsieve.artifacts import atomic_file
from logsieve.errors import LogsieveError

MAGIC = b"logsieve-watch-state 1\n"
VERSION = 1


def write_state(path: Path, meta: dict[str, Any], sessions: bytes) -> None:
    """One file: magic line, 8-byte length, JSON meta, Arrow IPC of the open sessions; atomic and fsync'ed."""
    header = json.dumps({"version": VERSION, **meta}, default=str).encode()
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        f.write(MAGIC + len(header).to_bytes(8, "big") + header)
        f.write(sessions)
        f.flush()
        os.fsync(f.fileno())
    _sync_dir(path.parent)


def read_state(path: Path) -> tuple[dict[str, Any], bytes] | None:
    """(meta, open-session bytes), or None when there is no state file yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LogsieveError(f"{path}: cannot read the state file ({exc.strerror})") from None
    damaged = f"{path}: not a watch state file or damaged; move it away to start from scratch"
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 8:
        raise LogsieveError(damaged)
    start = len(MAGIC) + 8
    size = int.from_bytes(data[len(MAGIC) : start], "big")
    try:
        meta = json.loads(data[start : start + size])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LogsieveError(damaged) from None
    if not isinstance(meta, dict) or meta.get("version") != VERSION:
        raise LogsieveError(damaged)
    return meta, data[start + size :]


def written_since(out: Path, offset: int) -> Counter[str]:
    """Session ids of the records after byte ``offset`` of the output file: written after the last checkpoint.

    A torn last line (a crash mid-write) is cut off the file. A file shorter than ``offset`` was rotated or
    truncated by someone else: nothing in it is ours to skip."""
    try:
        size = out.stat().st_size
    except FileNotFoundError:
        return Counter()
    if size <= offset:
        return Counter()
    with open(out, "rb+") as f:
        f.seek(offset)
        tail = f.read()
        whole = tail.rfind(b"\n") + 1
        if whole < len(tail):
            f.truncate(offset + whole)
    ids: Counter[str] = Counter()
    for line in tail[:whole].splitlines():
        try:
            ids[json.loads(line)["session_id"]] += 1
        except (ValueError, KeyError, TypeError):
            continue  # not one of our records
    return ids


def _sync_dir(folder: Path) -> None:
    """Make the rename itself durable (a power cut, not just a killed process)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
