"""Known-template matching: HDFS lines -> event ids E1..E30 with loghub's public HDFS_v1 template set.

The rule is the one loghub/ait-aecid used to label HDFS_v1 (ait's ``hdfs_parse.py``): a template is cut into
its literal parts at ``<*>``; it matches a *whole line* when the parts occur in it in order without overlap;
the first matching template in id order wins. Reproducing that rule, quirks included, is what makes our
sequences equal the published ones.

Speed: no template part contains a digit, so replacing every digit by ``#`` (a character no part contains)
cannot create or destroy a match. The ~11 M lines of HDFS_v1 collapse to a few thousand such *skeletons*;
the rule runs in Python once per distinct skeleton and a hash lookup maps the answer back to every line.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import polars as pl

HDFS = "hdfs"
WILDCARD = "<*>"
MASK_CHAR = "#"
CACHE_LIMIT = 1_000_000  # skeletons remembered; HDFS needs thousands, a log with hex ids could need one a line
_DIGITS_TO_MASK = bytes.maketrans(b"0123456789", MASK_CHAR.encode() * 10)


def load_templates(source: str | Path = HDFS) -> list[tuple[str, str]]:
    """(id, template) pairs: the shipped HDFS_v1 set for ``"hdfs"``, else a JSON file in the same format."""
    if str(source) == HDFS:
        text = resources.files("logsieve").joinpath("resources/hdfs_v1_templates.json").read_text("utf-8")
    else:
        text = Path(source).read_text("utf-8")
    return [(t["id"], t["template"]) for t in json.loads(text)["templates"]]


def template_parts(template: str) -> list[str]:
    """Literal parts in ait's way: trailing blanks cut, ``<*>`` characters stripped at both ends, split at ``<*>``."""
    return template.rstrip(" ").strip("<*>").split(WILDCARD)


def mask_digits(data: bytes) -> bytes:
    """Every ASCII digit -> '#': the same length, so positions in the masked text equal those in the original."""
    return data.translate(_DIGITS_TO_MASK)


def matches(parts: list[str], line: str) -> bool:
    """Do ``parts`` occur in ``line`` in this order, without overlapping? (Greedy leftmost search is exact.)"""
    pos = 0
    for part in parts:
        pos = line.find(part, pos)
        if pos < 0:
            return False
        pos += len(part)
    return True


class TemplateMatcher:
    """First-match template matcher over polars Series of lines (or of digit-masked lines: ``codes``).

    ``ids`` lists the event ids; ``codes`` answers with their positions (UInt16, null = no template),
    which keeps an 11 M-row column at two bytes a row. Answers are cached per skeleton across calls.
    """

    def __init__(self, templates: list[tuple[str, str]] | None = None) -> None:
        templates = load_templates(HDFS) if templates is None else templates
        self.ids = [tid for tid, _ in templates]
        self._parts = [template_parts(t) for _, t in templates]
        unsafe = set("0123456789" + MASK_CHAR)
        bad = [tid for tid, parts in zip(self.ids, self._parts, strict=True) if unsafe & set("".join(parts))]
        if bad:
            raise ValueError(f"templates {bad} contain digits or {MASK_CHAR!r}; digit masking would not be exact")
        self._cache: dict[str, int | None] = {}

    def match_text(self, line: str) -> str | None:
        """The rule itself, for one line."""
        code = self._first(line)
        return None if code is None else self.ids[code]

    def _first(self, text: str) -> int | None:
        return next((i for i, parts in enumerate(self._parts) if matches(parts, text)), None)

    def codes(self, skeletons: pl.Series) -> pl.Series:
        """Template positions for digit-masked lines (see ``mask_digits``); null where no template matches."""
        distinct = skeletons.unique().drop_nulls().to_list()
        if len(self._cache) + len(distinct) > CACHE_LIMIT:
            self._cache = {}
        cache = self._cache  # a local handle: another worker thread may replace self._cache meanwhile
        answers = [cache[s] if s in cache else cache.setdefault(s, self._first(s)) for s in distinct]
        return skeletons.replace_strict(distinct, answers, default=None, return_dtype=pl.UInt16).rename("event")

    def match(self, lines: pl.Series) -> pl.Series:
        """Event ids (str) for raw lines; null where no template matches."""
        codes = self.codes(lines.str.replace_all(r"[0-9]", MASK_CHAR))
        return self.decode(codes)

    def decode(self, codes: pl.Series) -> pl.Series:
        """UInt16 positions -> event id strings."""
        return pl.Series("event", self.ids, pl.String).gather(codes)
