"""Log formats as data: a header pattern, masks, Drain parameters, how to read the time and which field labels a line.

A header pattern follows the Loghub/logparser convention (``<Date> <Time> <Level> <Component>: <Content>``) so the
formats published with the Loghub benchmark work unchanged, but everything outside ``<Field>`` is *literal* (users
write ``|`` or ``[`` and mean them), except: a run of spaces matches any run of blanks, ``\\x`` is a literal ``x``
(logparser's escapes still work) and ``( … )?`` is an optional part. The 16 Loghub systems ship in
``resources/formats.toml``; ``--format NAME|FILE`` picks one of them or reads a user's own.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError, field_validator, model_validator

from logsieve.config import Frozen
from logsieve.errors import LogsieveError

CONTENT = "Content"
EPOCH = "epoch"
RESERVED = {"line_number", "source", "line", "timestamp", "label"}  # columns the reader adds itself
_FIELD = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


class Mask(Frozen):
    """A regex (polars/Rust syntax) whose matches in the content are replaced before template mining."""

    pattern: str
    replacement: str = "<*>"


class MinerParams(Frozen):
    """Drain parameters for one system (see ``TemplateMiner``)."""

    depth: int = 4
    sim_threshold: float = 0.5


class TimeSpec(Frozen):
    """Fields joined by one space and read with ``format`` (strptime, or ``"epoch"`` seconds); ``year`` is assumed
    when the log writes none (syslog-style logs), which matters only for windows spanning a new year."""

    fields: tuple[str, ...]
    format: str
    year: int | None = None


class LabelSpec(Frozen):
    """A header field that labels each line: anything but ``normal`` marks the line anomalous."""

    field: str
    normal: str = "-"


class LogFormat(Frozen):
    name: str
    description: str = ""
    pattern: str
    fields: dict[str, str] = {}
    masks: tuple[Mask, ...] = ()
    miner: MinerParams = MinerParams()
    time: TimeSpec | None = None
    label: LabelSpec | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        compile_pattern(pattern)  # raises ValueError with the reason
        return pattern

    @model_validator(mode="after")
    def _known_fields(self) -> LogFormat:
        compile_pattern(self.pattern, self.fields)  # the field regexes too
        names = set(self.field_names)
        used = {"fields": set(self.fields)}
        if self.time is not None:
            used["time"] = set(self.time.fields)
        if self.label is not None:
            used["label"] = {self.label.field}
        for what, fields in used.items():
            if missing := sorted(fields - names):
                raise ValueError(f"{what} names {missing}, which the pattern lacks (it has {sorted(names)})")
        return self

    @property
    def field_names(self) -> list[str]:
        return _FIELD.findall(self.pattern)

    @property
    def regex(self) -> str:
        """The whole-line regex with one named group per field (polars/Rust syntax)."""
        return compile_pattern(self.pattern, self.fields)

    @property
    def mask_pairs(self) -> tuple[tuple[str, str], ...]:
        """(pattern, replacement) pairs, as ``TemplateMiner(masks=…)`` takes them."""
        return tuple((m.pattern, m.replacement) for m in self.masks)

    def miner_kwargs(self) -> dict[str, Any]:
        """Everything a ``TemplateMiner`` for this format needs: its masks and Drain parameters."""
        return {"masks": self.mask_pairs, "depth": self.miner.depth, "sim_threshold": self.miner.sim_threshold}


def compile_pattern(pattern: str, fields: dict[str, str] | None = None) -> str:
    """Header pattern -> an anchored regex; ValueError naming the problem when it is not a usable pattern."""
    fields = fields or {}
    out, depth, seen, i = ["^"], 0, [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "<" and (m := _FIELD.match(pattern, i)):
            name = m.group(1)
            if name in seen:
                raise ValueError(f"field <{name}> appears twice")
            if name in RESERVED:
                raise ValueError(f"field name <{name}> is reserved ({', '.join(sorted(RESERVED))})")
            seen.append(name)
            body = ".*" if name == CONTENT else fields.get(name, ".*?")
            out.append(f"(?P<{name}>{body})")
            i = m.end()
        elif ch == "\\":
            if i + 1 == len(pattern):
                raise ValueError("pattern ends with a lone backslash")
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif ch == "(":
            depth += 1
            out.append("(?:")
            i += 1
        elif ch == ")":
            if depth == 0 or pattern[i + 1 : i + 2] != "?":
                raise ValueError(r"')' closes no '(' or lacks its '?': write \( and \) for literal parentheses")
            depth -= 1
            out.append(")?")
            i += 2
        elif ch == " ":
            while i < len(pattern) and pattern[i] == " ":
                i += 1
            out.append(r"\s+")
        else:
            out.append(re.escape(ch))
            i += 1
    if depth:
        raise ValueError(r"'(' is never closed by ')?': write \( for a literal parenthesis")
    if CONTENT not in seen:
        raise ValueError(f"pattern has no <{CONTENT}> field (the message that templates are mined from)")
    if seen[-1] != CONTENT:
        raise ValueError(f"<{CONTENT}> must be the last field")
    regex = "".join(out) + "$"
    for name, body in fields.items():
        try:
            re.compile(body)
        except re.error as exc:
            raise ValueError(f"regex of field {name} {body!r} does not compile: {exc}") from None
    return regex


# --- the shipped table and --format resolution --------------------------------------------------------------------


@cache
def _table() -> dict[str, Any]:
    text = resources.files("logsieve").joinpath("resources", "formats.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _build(name: str, row: dict[str, Any], where: str) -> LogFormat:
    """A format from its TOML row; mask names refer to the shipped ``[mask.*]`` rules."""
    row = dict(row)
    named = _table().get("mask", {})
    masks = []
    for m in row.pop("masks", []):
        if isinstance(m, str):
            if m not in named:
                raise LogsieveError(f"{where}: unknown mask {m!r}; shipped masks: {', '.join(sorted(named))}")
            m = named[m]
        masks.append(m)
    try:
        fmt = LogFormat(name=name, masks=tuple(masks), **row)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise LogsieveError(f"{where}: {loc + ': ' if loc else ''}{err['msg'].removeprefix('Value error, ')}") from None
    _check_regexes(fmt, where)
    return fmt


def _check_regexes(fmt: LogFormat, where: str) -> None:
    """The line regex and the masks must compile in polars' (Rust) syntax, not just Python's: fail here, once."""
    import polars as pl

    try:
        pl.Series([""]).str.contains(fmt.regex)
    except pl.exceptions.ComputeError as exc:
        raise LogsieveError(f"{where}: the pattern's regex does not compile: {str(exc).splitlines()[0]}") from None
    for m in fmt.masks:
        try:
            pl.Series([""]).str.replace_all(m.pattern, m.replacement)
        except pl.exceptions.ComputeError as exc:
            raise LogsieveError(f"{where}: mask {m.pattern!r} does not compile: {str(exc).splitlines()[0]}") from None


@cache
def shipped_formats() -> dict[str, LogFormat]:
    """Name -> format, in the order of formats.toml."""
    return {name: _build(name, row, f"formats.toml [format.{name}]") for name, row in _table()["format"].items()}


def mask_rules() -> dict[str, Mask]:
    """The named masks formats can refer to."""
    return {name: Mask(**row) for name, row in _table().get("mask", {}).items()}


def resolve_format(spec: str | Path | LogFormat) -> LogFormat:
    """``--format``: a shipped name (any case), or a FILE holding either one line (just the header pattern) or a
    TOML table with ``pattern`` and optional ``fields``, ``masks``, ``miner``, ``time``, ``label``."""
    if isinstance(spec, LogFormat):
        return spec
    shipped = shipped_formats()
    by_lower = {k.lower(): v for k, v in shipped.items()}
    if isinstance(spec, str) and spec.lower() in by_lower:
        return by_lower[spec.lower()]
    path = Path(spec)
    if not path.is_file():
        raise LogsieveError(f"--format {spec}: neither a shipped format ({', '.join(shipped)}) nor a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LogsieveError(f"--format {path}: cannot read ({exc})") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    try:
        row = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        if len(lines) == 1:  # one bare header-pattern line (blanks around it are accidents, not literals)
            return _build(path.stem, {"pattern": lines[0]}, str(path))
        raise LogsieveError(f"{path}: neither one header-pattern line nor a TOML table ({exc})") from None
    if "format" in row and isinstance(row["format"], dict) and "pattern" not in row:
        row = row["format"]  # [format] table
    name = str(row.pop("name", path.stem))
    return _build(name, row, str(path))
