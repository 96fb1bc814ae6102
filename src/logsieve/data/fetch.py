"""Download of public datasets: resumable (HTTP Range into a ``.part`` file), sha256-checked when a hash is
known (from the table or ``--sha256``; hdfs-v1 ships none, so it is NOT verified unless one is given),
unpacked atomically. Standard library only, so fetching data never needs more than Python itself.

Layout under ``dest``: the archive (``HDFS_v1.zip``, ``HDFS_v1.zip.part`` while downloading) and the
unpacked dataset folder (``hdfs-v1/``), which appears in one rename or not at all.
"""

from __future__ import annotations

import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from logsieve.artifacts import atomic_dir, sha256_file
from logsieve.errors import LogsieveError

ArchiveType = Literal["zip", "tar.gz"]
CHUNK = 1 << 16


class FetchError(LogsieveError):
    """Download, verification or unpacking failed; the message says what to do next."""


@dataclass(frozen=True)
class Dataset:
    url: str
    sha256: str | None  # None: print the computed hash and say it was not verified
    archive: ArchiveType
    about: str


DATASETS: dict[str, Dataset] = {
    "hdfs-v1": Dataset(
        url="https://zenodo.org/records/8196385/files/HDFS_v1.zip?download=1",
        sha256=None,  # no published hash checked here: `logsieve fetch` says NOT verified unless --sha256 is given
        archive="zip",
        about="Loghub HDFS_v1: 11.2 M log lines, 575,061 blocks, 16,838 anomalous (Zenodo record 8196385)",
    ),
}


@dataclass(frozen=True)
class FetchResult:
    archive: Path
    folder: Path
    sha256: str
    verified: bool
    resumed_from: int  # bytes already on disk when this run started (0: fresh download)
    downloaded: int  # bytes transferred by this run


# --- download -------------------------------------------------------------------------------------


def _unreachable(url: str, reason: object) -> FetchError:
    host = urlsplit(url).netloc or url
    return FetchError(f"cannot reach {host} ({reason}); are you offline? Check the network or pass --url to a mirror")


def _content_range_start(value: str | None) -> int | None:
    """'bytes 100-199/200' -> 100."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def download(url: str, part: Path, *, timeout: float = 30.0, verbose: bool = True) -> tuple[int, int]:
    """Download ``url`` into ``part``, continuing from its current size with an HTTP Range request.

    Returns (bytes on disk at start, bytes transferred now). A dropped connection keeps ``part`` and
    raises FetchError, so running again resumes instead of starting over.
    """
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "logsieve-fetch", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # nothing left to send: the .part is complete, unless it is too long
            size = (exc.headers.get("Content-Range") or "").rpartition("/")[2]
            if size.isdigit() and int(size) != start:
                part.unlink()  # stale, from a different file: start over
                return download(url, part, timeout=timeout, verbose=verbose)
            return start, 0
        raise FetchError(f"{url}: server answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        raise _unreachable(url, getattr(exc, "reason", exc)) from None

    with response:
        if start and response.status == 206 and _content_range_start(response.headers.get("Content-Range")) == start:
            mode, done = "ab", start
        else:  # server ignored the Range (or this is a fresh start): begin again
            mode, done = "wb", 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length and length.isdigit() else None
        received = 0
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not verbose,
            transient=True,
        )
        name = PurePosixPath(urlsplit(url).path).name or "download"
        with progress, part.open(mode) as fh:
            task = progress.add_task(("resuming " if done else "") + name, total=total, completed=done)
            try:
                while chunk := response.read(CHUNK):
                    fh.write(chunk)
                    received += len(chunk)
                    progress.advance(task, len(chunk))
            except (OSError, HTTPException) as exc:  # reset, timeout, IncompleteRead
                raise _interrupted(part, done + received, total, exc) from None
    if total is not None and done + received < total:
        raise _interrupted(part, done + received, total, "connection closed early")
    return start if mode == "ab" else 0, received


def _interrupted(part: Path, have: int, total: int | None, why: object) -> FetchError:
    of = f" of {total:,}" if total else ""
    return FetchError(
        f"download interrupted after {have:,}{of} bytes ({why}); kept {part.name}, run the same command again to resume"
    )


# --- unpack ---------------------------------------------------------------------------------------


def archive_type(path: Path) -> ArchiveType:
    """Sniff the magic bytes: the URL or file name may lie (``?download=1``, mirrors)."""
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"PK\x05\x06"):
        return "zip"
    if magic.startswith(b"\x1f\x8b"):
        return "tar.gz"
    raise FetchError(f"{path}: not a zip or tar.gz archive (starts with {magic!r})")


def _extract_zip(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        root = target.resolve()
        for member in zf.namelist():  # refuse entries that would land outside the target ("zip slip")
            if not (root / member).resolve().is_relative_to(root):
                raise FetchError(f"{archive}: unsafe path in archive: {member!r}")
        zf.extractall(target)


def unpack(archive: Path, folder: Path) -> Path:
    """Extract into a temporary sibling folder, then rename it to ``folder``: all or nothing."""
    kind = archive_type(archive)
    try:
        with atomic_dir(folder) as tmp:
            if kind == "zip":
                _extract_zip(archive, tmp)
            else:
                with tarfile.open(archive, "r:gz") as tf:
                    tf.extractall(tmp, filter="data")  # the "data" filter rejects absolute paths, links out, devices
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise FetchError(f"{archive}: cannot unpack ({exc})") from None
    return folder


# --- the whole job --------------------------------------------------------------------------------


def resolve_dataset(name: str, url: str | None = None, sha256: str | None = None) -> Dataset:
    """Known dataset from the table, with the URL and checksum optionally overridden."""
    if name not in DATASETS:
        raise FetchError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    known = DATASETS[name]
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise FetchError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    if url is not None and urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"--url must be an http(s) URL, got {url!r}")
    # a new URL without a new hash: the table's hash belongs to the table's URL only
    checksum = sha256 if sha256 is not None else (known.sha256 if url in (None, known.url) else None)
    return Dataset(url=url or known.url, sha256=checksum, archive=known.archive, about=known.about)


def fetch(
    name: str,
    dest: str | Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    timeout: float = 30.0,
    verbose: bool = True,
) -> FetchResult:
    """Download, verify and unpack dataset ``name`` into ``dest/<name>``; resume a broken download.

    A file whose sha256 does not match is deleted and nothing is unpacked.
    """
    ds = resolve_dataset(name, url, sha256)
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise FetchError(f"{dest}: exists and is not a directory")
    created = not dest.exists()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create --dest folder {dest}: {exc.strerror or exc}") from None
    filename = PurePosixPath(urlsplit(ds.url).path).name or f"{name}.{ds.archive}"
    archive, part, folder = dest / filename, dest / f"{filename}.part", dest / name

    resumed = transferred = 0
    if not archive.exists():
        try:
            resumed, transferred = download(ds.url, part, timeout=timeout, verbose=verbose)
        except FetchError:
            if created and not any(dest.iterdir()):
                dest.rmdir()  # a failed first attempt leaves no empty folder behind
            raise
        if part.stat().st_size == 0:
            part.unlink()
            raise FetchError(f"{ds.url}: server sent an empty file")
    candidate = archive if archive.exists() else part
    actual = sha256_file(candidate)
    if ds.sha256 is not None and actual != ds.sha256:
        candidate.unlink()
        raise FetchError(
            f"{filename}: sha256 mismatch (expected {ds.sha256}, got {actual}); the corrupted file was deleted "
            "and nothing was unpacked; run again to download afresh"
        )
    if candidate is part:
        os.replace(part, archive)
    unpack(archive, folder)
    return FetchResult(archive, folder, actual, ds.sha256 is not None, resumed, transferred)
