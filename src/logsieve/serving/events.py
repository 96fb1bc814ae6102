"""Raw lines of a growing log -> one row per (line, block it names), with the bundle's template source.

The same checks, templates and block ids as ``logsieve parse`` (``split_lines``' header and time check, the
shipped HDFS matcher or the bundle's saved miner, ``with_block_ids``), vectorised over a whole piece of lines so
that following a log costs what parsing it costs. Events travel as UInt16 codes into ``names`` (two bytes an
event in the open sessions) and become ids again only when a session is scored.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.parsing.lines import RejectStats, split_lines
from logsieve.parsing.mining import UNKNOWN, TemplateMiner
from logsieve.parsing.pipeline import NO_TEMPLATE
from logsieve.parsing.sessionize import with_block_ids
from logsieve.parsing.templates import HDFS, TemplateMatcher, load_templates
from logsieve.serving.bundle import Bundle
from logsieve.serving.scoring import bundle_templates

# Events that end an HDFS block: the NameNode deleted it (E23 "NameSystem.delete: blk is added to invalidSet",
# E30 "ask … to delete blk…"). Not E21 ("Deleting block … file"): a DataNode also deletes a surplus replica in
# the middle of a re-replicated block's life. What follows a delete (DataNode deletions, E20 delete errors, E28
# reports, E29 replication time-outs) still belongs to the block: in Loghub's 2 % HDFS sample it comes up to
# 27 min later (median 3.5 min), hence ``watch``'s 30-min grace.
DEFAULT_END_EVENTS = ("E23", "E30")


class EventSource:
    """Built once per bundle; ``parse`` is safe to call from several threads (the miner is used read-only)."""

    def __init__(self, bundle: Bundle) -> None:
        source = bundle_templates(bundle)
        if isinstance(source, str):
            self.matcher: TemplateMatcher | None = TemplateMatcher()
            self.miner: TemplateMiner | None = None
            self.names = list(self.matcher.ids)
            self.texts = [text for _, text in load_templates(HDFS)]
        else:
            self.matcher, self.miner = None, source
            clusters = self.miner.clusters_
            self.names = [UNKNOWN] + [c.id for c in clusters]  # transform() never learns: no other id can come
            self.texts = [""] + [c.template for c in clusters]
        if len(self.names) > 65_535:
            raise LogsieveError(f"{len(self.names):,} templates: more than watch's two-byte event codes hold")
        self._names = pl.Series("event", self.names, pl.String)

    def parse(self, data: bytes, source: str = "") -> tuple[pl.DataFrame, RejectStats]:
        """Whole lines -> rows (session_id, event code, time, n: the line's 0-based index in ``data``) in line
        order, and the counts of rejected lines (never their text: a follower runs for months)."""
        good, chunk_stats = split_lines(data, source, masked=self.matcher is not None)
        stats = RejectStats(lines=chunk_stats.lines, counts=chunk_stats.counts)
        if self.matcher is not None:
            codes = self.matcher.codes(good["masked"])
            if n_none := int(codes.null_count()):
                stats.counts[NO_TEMPLATE] += n_none
            good = good.select("n", "line", "timestamp").with_columns(event=codes).filter(pl.col("event").is_not_null())
        else:
            assert self.miner is not None
            line = pl.col("line")  # split_lines' header check guarantees the first ": " ends the component
            content = good.select(line.str.slice(line.str.find(": ", literal=True) + 2))["line"]
            ids = self.miner.transform(content).cast(pl.String)
            good = good.select("n", "line", "timestamp").with_columns(
                event=ids.replace_strict(self.names, range(len(self.names)), return_dtype=pl.UInt16)
            )
        good = with_block_ids(good)
        has_block = good["blocks"].list.len() > 0
        stats.unblocked = int((~has_block).sum())
        rows = (
            good.filter(has_block)
            .select(session_id="blocks", event="event", time="timestamp", n=pl.col("n").cast(pl.Int64))
            .explode("session_id")
        )
        return rows, stats

    closes_when_full = False  # only windows of N lines do (``FormatEventSource``)

    def number(self, rows: pl.DataFrame, first: int) -> tuple[pl.DataFrame, int]:
        """Block sessions need no numbering in line order (see ``FormatEventSource.number``)."""
        return rows, 0

    def decode(self, events: pl.Series) -> pl.Series:
        """List[UInt16] codes -> List[String] event ids."""
        n = len(self.names)
        return events.list.eval(pl.element().replace_strict(range(n), self.names, return_dtype=pl.String))

    def end_codes(self, requested: Sequence[str] | None = None) -> list[int]:
        """Codes of the events that end a block. ``requested`` are ids of this template source; for a mined
        source, HDFS ids (E23) also name the mined templates that the HDFS template matches. None: the default
        (``DEFAULT_END_EVENTS``); an empty list: no event ends a block (only idle time closes sessions)."""
        wanted = list(DEFAULT_END_EVENTS if requested is None else requested)
        codes = {self.names.index(w) for w in wanted if w in self.names}
        if self.miner is not None:
            hdfs = TemplateMatcher()
            codes |= {i for i, text in enumerate(self.texts) if text and hdfs.match_text(text) in wanted}
        unknown = [w for w in wanted if w not in self.names and not (self.miner is not None and w.startswith("E"))]
        if unknown and requested is not None:
            raise LogsieveError(f"--end-events: {', '.join(unknown)} not among the bundle's events "
                                f"({self.names[0]} … {self.names[-1]})")  # fmt: skip
        return sorted(codes)
