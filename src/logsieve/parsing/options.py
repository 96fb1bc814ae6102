"""What a user typed about raw logs (``--format``, the session rule, per-line labels, ``--templates``), as one
object. A light module: the CLI imports it at start-up, so it must not pull in polars; ``spec.parse_raw`` turns
it into sessions and the ``ParseSpec`` that reproduces them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from logsieve.config import Frozen

if TYPE_CHECKING:
    from logsieve.parsing.format_pipeline import SessionRule


def block_key() -> str:
    """HDFS's session key (``sessionize.BLOCK_RE``), imported only when needed."""
    from logsieve.parsing.sessionize import BLOCK_RE

    return BLOCK_RE


class ParseOptions(Frozen):
    """The raw-log options a user typed (``--format``, the session rule, labels, ``--templates``); unset = default."""

    format: str | None = None
    session_key: str | None = None
    window: str | None = None
    lines: int | None = None
    step: str | None = None
    label_regex: str | None = None
    label_field: str | None = None
    templates: str | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in self.model_dump().values())

    @property
    def fast(self) -> bool:
        """HDFS with ``blk_`` sessions and per-session labels: the fast HDFS parser, exactly as before --format."""
        return (
            (self.format is None or self.format.upper() == "HDFS")
            and self.session_key in (None, block_key())
            and all(v is None for v in (self.window, self.lines, self.step, self.label_regex, self.label_field))
        )

    def rule(self) -> SessionRule:
        """The session rule; HDFS without one keys on block ids."""
        by_time_or_lines = self.window is not None or self.lines is not None
        hdfs = self.format is None or self.format.upper() == "HDFS"
        key = self.session_key if self.session_key is not None or by_time_or_lines or not hdfs else block_key()
        from logsieve.parsing.format_pipeline import SessionRule

        return SessionRule.of(key, self.window, self.lines, self.step)

    def cli_args(self) -> list[str]:
        """The options as command-line words, to record a command that can be run again."""
        names = {"format": "--format", "session_key": "--session-key", "window": "--window", "lines": "--lines",
                 "step": "--step", "label_regex": "--label-regex", "label_field": "--label-field",
                 "templates": "--templates"}  # fmt: skip
        out: list[str] = []
        for key, value in self.model_dump().items():
            if value is not None:
                out += [names[key], str(value)]
        return out
