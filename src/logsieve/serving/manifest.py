"""A bundle's manifest: what the model is, how raw lines become its events, and a sha256 for every file.

Reading one is strict so a bad bundle fails with one clear line before any weights are touched: a folder
without a manifest, a manifest of another format or of a newer format version, a damaged manifest, or a
file whose size or sha256 differs from the manifest's record.
"""

from __future__ import annotations

import contextlib
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from logsieve.artifacts import read_json, sha256_file, versions
from logsieve.config import Frozen, validation_summary
from logsieve.errors import LogsieveError
from logsieve.parsing.spec import ParseSpec

FORMAT: Literal["logsieve-bundle"] = "logsieve-bundle"
FORMAT_VERSION = 2  # the newest this reads; bump when a reader of the previous version would misread a new bundle
PLAIN_VERSION = 1  # what a bundle without a parse spec (HDFS blk_ sessions) is still written as, for older readers
MANIFEST = "manifest.json"
RUN_MARKS = ("config.json", "metrics.json")  # a run directory's record, for a helpful error


class FileEntry(Frozen):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class TemplateSource(Frozen):
    """How raw lines become events: the shipped HDFS set (its list and sha256) or a saved miner state file."""

    source: Literal["hdfs", "miner"]
    sha256: str
    count: int = Field(ge=0)
    templates: list[tuple[str, str]] | None = None  # (id, template) for "hdfs"
    file: str | None = None  # the miner state file inside the bundle, for "miner"


class Truncation(Frozen):
    max_len: int = Field(ge=1)
    truncate: Literal["head", "tail"]


class Manifest(Frozen):
    format: Literal["logsieve-bundle"] = FORMAT
    format_version: int = FORMAT_VERSION
    created: str
    kind: str  # "rnn" or a baseline kind
    name: str  # preset or baseline name
    seed: int
    config: dict[str, Any]
    vocabulary: list[str]
    threshold: float = Field(ge=0, le=1)
    templates: TemplateSource
    truncation: Truncation | None  # None: count baselines read whole sessions
    metrics: dict[str, dict[str, Any]]  # {"validation": ..., "test": ...}
    data: dict[str, Any]  # training data fingerprint (source, sha256, sessions, anomalies) and split sizes
    versions: dict[str, str]  # the environment that exported (and self-checked) the bundle
    trained_with: dict[str, str]  # the environment of the training run
    files: dict[str, FileEntry]
    # How raw lines become sessions (format, session rule, per-line labels; the miner state is ``templates``'
    # file). None: HDFS lines in blk_ sessions, as every bundle before format version 2.
    parse: ParseSpec | None = None

    @model_validator(mode="after")
    def _parse_agrees(self) -> Manifest:
        if self.parse is not None and self.parse.templates != self.templates.source:
            raise ValueError(f"parse.templates {self.parse.templates!r} but templates.source {self.templates.source!r}")
        return self

    @field_validator("files")
    @classmethod
    def _plain_names(cls, files: dict[str, FileEntry]) -> dict[str, FileEntry]:
        """Only plain file names: a manifest must not point outside its bundle."""
        bad = [n for n in files if not n or n in (".", "..") or "/" in n or "\\" in n or n == MANIFEST]
        if bad:
            raise ValueError(f"file names must be plain names inside the bundle, got {bad}")
        return files


def format_version(parse: ParseSpec | None) -> int:
    """Version 2 only for a bundle that records a parse spec: a version-1 reader would parse its raw lines as
    HDFS; any other bundle stays readable by logsieve versions from before parse specs."""
    return FORMAT_VERSION if parse is not None else PLAIN_VERSION


def environment() -> dict[str, str]:
    """``artifacts.versions()`` plus the two weight formats' libraries."""
    out = versions()
    for name in ("skops", "safetensors"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def file_entry(path: Path) -> FileEntry:
    return FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)


def read_manifest(bundle: Path) -> Manifest:
    """The manifest of ``bundle``, checked for format, version and shape (not yet the files)."""
    if not bundle.exists():
        raise LogsieveError(f"{bundle}: no such bundle directory")
    if not bundle.is_dir():
        raise LogsieveError(f"{bundle}: not a bundle (a bundle is a directory holding {MANIFEST})")
    if not (bundle / MANIFEST).is_file():
        if all((bundle / name).is_file() for name in RUN_MARKS):
            raise LogsieveError(f"{bundle}: a run directory, not a bundle; make one with "
                                f"`logsieve export --model {bundle} --out BUNDLE`")  # fmt: skip
        raise LogsieveError(f"{bundle}: not a logsieve bundle (no {MANIFEST})")
    raw = read_json(bundle / MANIFEST, "bundle manifest")
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise LogsieveError(f"{bundle}: not a logsieve bundle ({MANIFEST} is not a {FORMAT} manifest)")
    version = raw.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise LogsieveError(f"{bundle / MANIFEST}: bundle manifest is damaged (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise LogsieveError(f"{bundle}: bundle format version {version} is newer than this logsieve reads "
                            f"({FORMAT_VERSION}); upgrade logsieve")  # fmt: skip
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise LogsieveError(f"{bundle / MANIFEST}: bundle manifest is damaged ({validation_summary(exc)})") from None


def verify_files(bundle: Path, manifest: Manifest, required: tuple[str, ...]) -> None:
    """Every listed file exists with the recorded size and sha256; ``required`` files are listed."""
    unlisted = [name for name in required if name not in manifest.files]
    if unlisted:
        raise LogsieveError(f"{bundle / MANIFEST}: bundle manifest is damaged (no entry for {', '.join(unlisted)})")
    for name, entry in manifest.files.items():
        path = bundle / name
        if not path.is_file():
            raise LogsieveError(f"{bundle}: bundle file {name} is missing")
        size = path.stat().st_size
        if size != entry.bytes:
            raise LogsieveError(f"{path}: truncated or altered ({size:,} bytes, the manifest says {entry.bytes:,})")
        if sha256_file(path) != entry.sha256:
            raise LogsieveError(f"{path}: altered since export (sha256 differs from the manifest)")


def version_drift(manifest: Manifest, libraries: tuple[str, ...]) -> list[str]:
    """``"torch 2.13.0 -> 2.14.0"`` for each library whose version differs from the exporting one."""
    now = environment()
    return [f"{lib} {manifest.versions[lib]} -> {now.get(lib, 'missing')}"
            for lib in libraries if lib in manifest.versions and manifest.versions[lib] != now.get(lib)]  # fmt: skip
