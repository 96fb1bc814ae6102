"""Writing outputs safely and reproducibly: atomic files and directories, fingerprints, versions."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import LogsieveError

PACKAGES = ("logsieve", "torch", "polars", "numpy", "scikit-learn", "optuna", "pydantic")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write via a temp file in the same folder, then rename: readers never see half a file."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _make_parent(path: Path) -> None:
    """The folder a result goes into, or one line saying why it cannot be made."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LogsieveError(f"cannot create output folder {path.parent}: {exc.strerror}") from None


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a unique temp path beside ``path`` for a writer that needs a file name (polars, torch,
    matplotlib); it replaces ``path`` only when the block ends without error and never outlives it."""
    path = Path(path)
    _make_parent(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp directory that replaces ``path`` only when the block finishes without error."""
    path = Path(path)
    _make_parent(path)
    if path.exists() and not path.is_dir():
        raise LogsieveError(f"{path} exists and is not a directory")
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_writable(path: str | Path, *, folder: bool = False) -> Path:
    """Fail before any work (not after an hour of training) when an output cannot be written: create the
    folder that will hold ``path`` (``path`` itself if ``folder`` and it exists) and a probe file in it."""
    path = Path(path)
    if path.exists() and folder and not path.is_dir():
        raise LogsieveError(f"{path}: exists and is not a directory (this output is a folder)")
    if path.exists() and not folder and path.is_dir():
        raise LogsieveError(f"{path}: is a directory (this output is a file)")
    where = path if folder and path.is_dir() else path.parent
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LogsieveError(f"cannot create output folder {where}: {exc.strerror or exc}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=where, prefix=".logsieve-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise LogsieveError(f"cannot write in output folder {where}: {exc.strerror or exc}") from None
    return path


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Read back a JSON file we wrote (run records, states): missing or damaged -> one LogsieveError line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LogsieveError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LogsieveError(f"{path}: cannot read {what} ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LogsieveError(f"{path}: {what} is damaged (not valid JSON: {exc.msg} at line {exc.lineno})") from None


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_path(path: str | Path) -> str:
    """sha256 of a file, or of the sorted (name, sha256) list of the files in a directory."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    listing = "\n".join(f"{p.relative_to(path)} {sha256_file(p)}" for p in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def sha256_table(df: pl.DataFrame) -> str:
    """Content fingerprint of a session table (for data made in memory, e.g. by the simulator)."""
    text = df.select(pl.col("session_id"), pl.col("label").cast(pl.String), pl.col("events").list.join(" ")).write_csv()
    return hashlib.sha256(text.encode()).hexdigest()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        with suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def available_cpus() -> int:
    """CPUs this process may use (its affinity mask, e.g. a container's share), not the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
