"""How raw lines became sessions, as data that travels: ``ParseSpec`` = the full log format, the session rule,
the per-line label option and the template source (the shipped HDFS set, or a miner and its learned state).

It rides along everywhere sessions go, so a model trained on BGL windows can later score raw BGL lines with
nothing but its bundle: ``parse`` writes it into the session file's Parquet metadata, ``--data`` reads it back
(or makes it when parsing raw logs), every run directory keeps it (``parse.json``) and ``export`` puts it into
the bundle. HDFS with ``blk_`` sessions and the shipped templates is simply the default spec: data, runs and
bundles without one are that spec, so everything made before specs existed means what it always meant.

Templates are mined on ALL lines of the data before any split: mining reads only line text, never labels, so
the test split leaks nothing but the vocabulary of message shapes (the usual Loghub practice). Applying a spec
never learns: a bundle's miner maps unseen shapes to ``M0``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from logsieve.artifacts import read_json, write_json
from logsieve.config import Frozen, validation_summary
from logsieve.errors import DataError, LogsieveError
from logsieve.parsing.format_pipeline import SessionRule
from logsieve.parsing.formats import LogFormat, resolve_format, shipped_formats
from logsieve.parsing.options import ParseOptions
from logsieve.parsing.pipeline import MINE, ParseResult
from logsieve.parsing.sessionize import BLOCK_RE
from logsieve.parsing.templates import HDFS

if TYPE_CHECKING:
    from logsieve.parsing.mining import TemplateMiner

PARSE_FILE = "parse.json"  # a run directory's copy of its data's spec (with the miner state)
META_KEY = "logsieve.parse"  # the Parquet key-value metadata entry that holds a session file's spec
SPEC_VERSION = 1


class ParseSpec(Frozen):
    """Everything needed to turn raw lines of one log into the sessions a model was trained on."""

    version: Literal[1] = 1  # SPEC_VERSION
    format: LogFormat
    rule: SessionRule
    label_regex: str | None = None
    label_field: str | None = None
    templates: Literal["hdfs", "miner"] = "hdfs"
    miner: dict[str, Any] | None = None  # TemplateMiner.to_state(); a bundle keeps it in its own file instead

    @property
    def hdfs_fast(self) -> bool:
        """HDFS lines in ``blk_`` sessions without per-line labels: the fast HDFS parser reads these."""
        return (
            self.format == shipped_formats()["HDFS"]
            and self.rule == SessionRule(key=BLOCK_RE)
            and self.label_regex is None
            and self.label_field is None
        )

    @property
    def is_default(self) -> bool:
        """The spec that data, runs and bundles without one stand for: nothing needs recording."""
        return self.hdfs_fast and self.templates == HDFS

    def template_source(self, where: object = "parse spec") -> str | TemplateMiner:
        """``"hdfs"``, or the miner rebuilt from its state (used read-only: applying a spec never learns)."""
        if self.templates == HDFS:
            return HDFS
        if self.miner is None:
            raise LogsieveError(f"{where}: mined templates, but the miner state is missing")
        from logsieve.parsing.mining import TemplateMiner

        return TemplateMiner.from_state(self.miner, where)

    def definition(self) -> ParseSpec:
        """The spec without the (possibly large) miner state: what a bundle manifest records."""
        return self.model_copy(update={"miner": None})

    def with_miner(self, state: dict[str, Any] | None) -> ParseSpec:
        return self.model_copy(update={"miner": state})

    def describe(self) -> str:
        """``BGL, --window 60s, 123 mined templates``: one line for logs and ``verify``."""
        r = self.rule
        parts = [self.format.name]
        for flag, value in (("--session-key", r.key), ("--window", r.window), ("--lines", r.lines),
                            ("--step", r.step), ("--label-regex", self.label_regex),
                            ("--label-field", self.label_field)):  # fmt: skip
            if value is not None:
                parts.append(f"{flag} {value}")
        clusters = (self.miner or {}).get("clusters")
        mined = f"{len(clusters)} mined templates" if isinstance(clusters, list) else "mined templates"
        return ", ".join([*parts, "HDFS templates" if self.templates == HDFS else mined])

    def events_sha256(self) -> str:
        """Fingerprint of what event ids mean under this spec (its template source), to compare two specs."""
        payload = json.dumps([self.templates, self.miner], sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(payload).hexdigest()


def hdfs_spec(miner: TemplateMiner | None = None) -> ParseSpec:
    """The default: HDFS lines, ``blk_`` sessions, the shipped templates (or ``miner``'s, as ``parse
    --templates mine`` learns them on the HDFS fast path)."""
    return ParseSpec(
        format=shipped_formats()["HDFS"], rule=SessionRule(key=BLOCK_RE),
        templates=HDFS if miner is None else "miner", miner=None if miner is None else miner.to_state(),
    )  # fmt: skip


def made_spec(
    fmt: str | Path | LogFormat,
    rule: SessionRule,
    label_regex: str | None,
    label_field: str | None,
    miner: TemplateMiner | None,
) -> ParseSpec:
    """The spec of a finished ``parse_format_report`` (its miner: learned, loaded, or None for HDFS templates)."""
    return ParseSpec(
        format=resolve_format(fmt), rule=rule, label_regex=label_regex, label_field=label_field,
        templates=HDFS if miner is None else "miner", miner=None if miner is None else miner.to_state(),
    )  # fmt: skip


def parse_raw(
    paths: Iterable[str | Path],
    options: ParseOptions,
    labels: str | Path | None = None,
    rejects: str | Path | None = None,
) -> tuple[ParseResult, ParseSpec]:
    """Parse raw logs as the options say, LEARNING templates when mining (on every line, label-free), and
    return the sessions with the spec that reproduces them."""
    paths = list(paths)
    if options.fast:
        from logsieve.parsing.pipeline import parse_logs_report

        res = parse_logs_report(paths, labels=labels, templates=options.templates or HDFS, rejects=rejects)
        return res, hdfs_spec(res.miner)
    from logsieve.parsing.format_pipeline import parse_format_report

    fmt = resolve_format(options.format or "HDFS")
    rule = options.rule()
    templates = options.templates or (HDFS if fmt.name == "HDFS" else MINE)
    res = parse_format_report(paths, fmt, rule, labels=labels, label_regex=options.label_regex,
                              label_field=options.label_field, templates=templates, rejects=rejects)  # fmt: skip
    return res, made_spec(fmt, rule, options.label_regex, options.label_field, res.miner)


def apply_spec(
    paths: Iterable[str | Path],
    spec: ParseSpec,
    labels: str | Path | None = None,
    rejects: str | Path | None = None,
    where: object = "parse spec",
) -> ParseResult:
    """Parse raw logs exactly as ``spec`` says, never learning: its miner maps unseen message shapes to ``M0``."""
    paths = list(paths)
    templates = spec.template_source(where)
    if spec.hdfs_fast:
        from logsieve.parsing.pipeline import parse_logs_report

        return parse_logs_report(paths, labels=labels, templates=templates, rejects=rejects)
    from logsieve.parsing.format_pipeline import parse_format_report

    return parse_format_report(paths, spec.format, spec.rule, labels=labels, label_regex=spec.label_regex,
                               label_field=spec.label_field, templates=templates, rejects=rejects)  # fmt: skip


# --- where a spec is kept: Parquet metadata, run directories -------------------------------------------------------


def spec_metadata(spec: ParseSpec | None) -> dict[str, str] | None:
    """Parquet key-value metadata holding ``spec`` (with its miner state); None for the default spec."""
    if spec is None or spec.is_default:
        return None
    return {META_KEY: json.dumps(spec.model_dump(mode="json"), ensure_ascii=False)}


def read_parquet_spec(path: str | Path) -> ParseSpec | None:
    """The spec a session file was written with (``parse``); None when it has none (= the default spec)."""
    import polars as pl

    try:
        meta = pl.read_parquet_metadata(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(path, f"not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    text = meta.get(META_KEY)
    if text is None:
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raise DataError(path, f"its parse spec ({META_KEY} metadata) is damaged (not JSON)") from None
    return spec_from_dict(raw, f"{path} ({META_KEY} metadata)")


def spec_from_dict(raw: object, where: object) -> ParseSpec:
    """A spec from its JSON form, or one ``DataError`` naming where it came from."""
    if isinstance(raw, dict) and isinstance(raw.get("version"), int) and raw["version"] > SPEC_VERSION:
        raise DataError(where, f"parse spec version {raw['version']} is newer than this logsieve reads; upgrade")
    try:
        return ParseSpec.model_validate(raw)
    except ValidationError as exc:
        raise DataError(where, f"parse spec is damaged ({validation_summary(exc)})") from None


def save_spec(folder: str | Path, spec: ParseSpec | None) -> None:
    """Write ``folder/parse.json`` (run directories), unless ``spec`` is the default (then nothing is written)."""
    if spec is not None and not spec.is_default:
        write_json(Path(folder) / PARSE_FILE, spec.model_dump(mode="json"))


def read_spec(folder: str | Path) -> ParseSpec | None:
    """A run directory's spec (``parse.json``); None when it has none: its data was HDFS with the shipped set."""
    path = Path(folder) / PARSE_FILE
    if not path.is_file():
        return None
    return spec_from_dict(read_json(path, "parse spec"), path)
