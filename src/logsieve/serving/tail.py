"""Follow growing files like ``tail -F``: through rotation (rename + new file), copytruncate, a file that
appears later, and stdin; hand out pieces of whole lines, each with the position just after it.

A position is (path, device, inode, offset, fingerprint of the first bytes), as in Filebeat's registry: the
inode names the file, the fingerprint guards against a reused inode and catches a file that was truncated and
rewritten past our offset, which its size alone would hide. On a restart a file that was rotated meanwhile is
found again by inode in its folder (``HDFS.log.1``) and read to its end before the new file, so no line is lost
to a rotation while we were down; a rotated file that was also deleted or compressed is gone (we say so).

Limits, as with any tailer: lines a copytruncate cuts off after our last read are only in the copy (not
followed), and a rotated file is read to its end once we see the new one, so a writer that keeps writing to the
old file after that loses those lines to us.
"""

from __future__ import annotations

import hashlib
import os
import select
import stat
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from logsieve.parsing.lines import MAX_LINE_BYTES, STDIN

FINGERPRINT_BYTES = 1024
READ_BYTES = 8 << 20  # most bytes one poll takes from one file (~58 k HDFS lines)


@dataclass(frozen=True)
class Position:
    """Where the next unread line of a file starts; ``fingerprint`` hashes its first ``fp_len`` bytes."""

    path: str
    dev: int
    ino: int
    offset: int
    fp_len: int
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Position:
        return cls(str(d["path"]), int(d["dev"]), int(d["ino"]), int(d["offset"]), int(d["fp_len"]),
                   str(d["fingerprint"]))  # fmt: skip


@dataclass
class Piece:
    """Whole lines of one input (each ends in a newline) and the position after them (None for stdin)."""

    source: str
    data: bytes
    position: Position | None
    follower: Follower = field(repr=False)


class Follower(Protocol):
    source: str
    position: Position | None  # last committed position (what a state file records)
    rotations: int
    truncations: int

    def poll(self, limit: int = READ_BYTES) -> Piece | None: ...
    def finish(self) -> Piece | None: ...
    def commit(self, position: Position | None) -> None: ...
    def at_end(self) -> bool: ...
    def close(self) -> None: ...


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Lines:
    """Cuts a stream (stdin) into whole lines; a runaway line keeps only its head (MAX_LINE_BYTES + 1 bytes, so it
    is still one line, rejected as too long), so memory stays bounded."""

    def __init__(self) -> None:
        self.buf, self.skipping = b"", False

    def feed(self, data: bytes) -> bytes:
        if self.skipping:  # drop the rest of a runaway line
            nl = data.find(b"\n")
            if nl < 0:
                return b""
            data, self.skipping = data[nl + 1 :], False
        data = self.buf + data
        cut = data.rfind(b"\n") + 1
        lines, self.buf = data[:cut], data[cut:]
        if len(self.buf) > MAX_LINE_BYTES:
            lines += self.buf[: MAX_LINE_BYTES + 1] + b"\n"
            self.buf, self.skipping = b"", True
        return lines

    def finish(self) -> bytes:
        """The unfinished last line as a line: the stream has ended."""
        rest, self.buf, self.skipping = self.buf, b"", False
        return rest + b"\n" if rest else b""


class _Handle:
    """One open file. ``pos`` is where its next unread line starts: an unfinished last line is read again next
    time rather than kept and glued on (which would copy every piece once more)."""

    def __init__(self, path: str, start: int = 0) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        st = os.fstat(self.fd)
        self.path, self.dev, self.ino, self.size = path, st.st_dev, st.st_ino, st.st_size
        self.pos, self.skipping = start, False
        self.head = os.pread(self.fd, FINGERPRINT_BYTES, 0)  # first bytes as they are now

    def position(self) -> Position:
        n = min(self.pos, FINGERPRINT_BYTES)
        if len(self.head) < n:
            self.head = os.pread(self.fd, FINGERPRINT_BYTES, 0)
        return Position(self.path, self.dev, self.ino, self.pos, n, _digest(self.head[:n]))

    def truncated(self) -> bool:
        """Shorter than what we read, or its first bytes changed (truncated, then rewritten past our offset)."""
        st = os.fstat(self.fd)
        if st.st_size < self.pos:
            return True
        changed, self.size = st.st_size != self.size, st.st_size
        n = min(len(self.head), self.pos)
        return changed and n > 0 and os.pread(self.fd, n, 0) != self.head[:n]

    def restart(self) -> None:
        self.pos, self.skipping = 0, False
        self.head = os.pread(self.fd, FINGERPRINT_BYTES, 0)

    def start_at_end(self) -> None:
        """Skip what is there now, up to its last whole line (an unfinished one will be read whole)."""
        start = max(0, self.size - MAX_LINE_BYTES)
        tail = os.pread(self.fd, self.size - start, start)
        self.pos = start + tail.rfind(b"\n") + 1 if b"\n" in tail else start

    def read(self, limit: int, final: bool = False) -> bytes:
        """Whole lines from ``pos`` on, at most ``limit`` bytes (b"" if none yet). A runaway line keeps only its
        head (still one line, rejected as too long), so memory stays bounded. ``final``: the file will not grow
        any more, so an unfinished last line counts as a line."""
        data = os.pread(self.fd, limit, self.pos)
        if self.skipping:  # the rest of a runaway line
            nl = data.find(b"\n")
            self.pos += len(data) if nl < 0 else nl + 1
            if nl < 0:
                return b""
            data, self.skipping = data[nl + 1 :], False
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) > MAX_LINE_BYTES:
            self.pos += len(data)
            self.skipping = True
            return data[: MAX_LINE_BYTES + 1] + b"\n"
        if final and cut < len(data) and len(data) < limit:
            self.pos += len(data)
            return data + b"\n"
        self.pos += cut
        return data if cut == len(data) else data[:cut]

    def at_end(self) -> bool:
        """No whole line left to read (an unfinished one may be)."""
        rest = os.pread(self.fd, MAX_LINE_BYTES + 1, self.pos)
        return b"\n" not in rest and len(rest) <= MAX_LINE_BYTES

    def deleted(self) -> bool:
        return os.fstat(self.fd).st_nlink == 0

    def close(self) -> None:
        os.close(self.fd)


def same_file(path: str, pos: Position) -> os.stat_result | None:
    """``path``'s stat if it is the file ``pos`` was taken in: same device, inode and first bytes, and not shorter."""
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) != (pos.dev, pos.ino) or st.st_size < pos.offset:
            return None
        with open(path, "rb") as f:
            return st if _digest(f.read(pos.fp_len)) == pos.fingerprint else None
    except OSError:
        return None


def find_moved(pos: Position) -> str | None:
    """The file ``pos`` was taken in, under any name in its folder (a rotation renames, keeping the inode)."""
    folder = Path(pos.path).parent
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    for entry in entries:
        try:
            if entry.inode() == pos.ino and entry.is_file() and same_file(entry.path, pos):
                return entry.path
        except OSError:
            continue
    return None


class FileFollower:
    """``tail -F`` for one path. ``poll`` reads a rotated-away file to its end before the new one."""

    def __init__(self, path: str, resume: Position | None = None, from_end: bool = False,
                 say: Any = print) -> None:  # fmt: skip
        self.source = path
        self.position: Position | None = resume
        self.rotations = self.truncations = 0
        self.say = say
        self._cur: _Handle | None = None
        self._old: list[_Handle] = []  # rotated away, still to be read to their end
        self._from_end = from_end and resume is None
        self._gone_said = False
        if resume is not None:
            self._resume(resume)

    def _resume(self, pos: Position) -> None:
        if same_file(self.source, pos):
            self._cur = _Handle(self.source, pos.offset)
            return
        try:
            st = os.stat(self.source)
        except OSError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == (pos.dev, pos.ino):  # same file, other first bytes
            self.truncations += 1
            self.say(f"{self.source}: truncated while we were stopped; reading it from the start")
            return
        moved = find_moved(pos)
        if moved is None:
            self.say(f"{self.source}: the file we stopped in (inode {pos.ino}) is gone; lines after byte "
                     f"{pos.offset:,} of it are lost")  # fmt: skip
            return
        self.rotations += 1
        self.say(f"{self.source}: rotated while we were stopped; finishing {moved} first")
        self._old.append(_Handle(moved, pos.offset))

    def _open(self) -> None:
        try:
            if not stat.S_ISREG(os.stat(self.source).st_mode):
                return
            handle = _Handle(self.source)
        except OSError:
            return
        if self._from_end:
            handle.start_at_end()
            self._from_end = False
        self._cur = handle
        self._gone_said = False

    def _check(self) -> None:
        """Notice a file that appeared, was replaced (rotation) or truncated (copytruncate)."""
        if self._cur is None:
            self._open()
            return
        try:
            st = os.stat(self.source)
        except OSError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) != (self._cur.dev, self._cur.ino):
            self.rotations += 1
            self._old.append(self._cur)
            self._cur = None
            self._open()
        elif self._cur.truncated():
            self.truncations += 1
            self.say(f"{self.source}: truncated; reading it from the start")
            self._cur.restart()

    def poll(self, limit: int = READ_BYTES) -> Piece | None:
        self._check()
        while self._old:
            old = self._old[0]
            data = old.read(limit, final=True)
            if data:
                return Piece(self.source, data, old.position(), self)
            old.close()
            self._old.pop(0)
        cur = self._cur
        if cur is None:
            return None
        final = cur.deleted() and cur.at_end()  # deleted and read through: nothing more will come
        data = cur.read(limit, final=final)
        if data:
            return Piece(self.source, data, cur.position(), self)
        if final:
            if not self._gone_said:
                self.say(f"{self.source}: deleted; waiting for it to appear again")
                self._gone_said = True
            cur.close()
            self._cur = None
        return None

    def finish(self) -> Piece | None:
        """The unfinished last line of the current file as a line (``--once``: the input has ended)."""
        cur = self._cur
        data = cur.read(MAX_LINE_BYTES + 2, final=True) if cur is not None else b""
        return Piece(self.source, data, cur.position(), self) if cur is not None and data else None

    def commit(self, position: Position | None) -> None:
        if position is not None:
            self.position = position

    def at_end(self) -> bool:
        """Everything present now has been read (used by ``--once``)."""
        if self._old:
            return False
        return self._cur is None or self._cur.at_end()

    def close(self) -> None:
        for h in [*self._old, *([self._cur] if self._cur else [])]:
            h.close()
        self._old, self._cur = [], None


class StdinFollower:
    """Standard input: read what is there without blocking; at its end an unfinished last line counts."""

    def __init__(self, stream: Any = None) -> None:
        self.source = STDIN
        self.position: Position | None = None
        self.rotations = self.truncations = 0
        self._fd = (stream or sys.stdin.buffer).fileno()
        self._lines = _Lines()
        self.eof = False

    def poll(self, limit: int = READ_BYTES) -> Piece | None:
        if self.eof or not select.select([self._fd], [], [], 0)[0]:
            return None
        data = os.read(self._fd, limit)
        if not data:
            self.eof = True
        lines = self._lines.feed(data) if data else self._lines.finish()
        return Piece(self.source, lines, None, self) if lines else None

    def finish(self) -> Piece | None:
        return None

    def commit(self, position: Position | None) -> None:
        pass

    def at_end(self) -> bool:
        return self.eof

    def close(self) -> None:
        pass
