"""Event id -> index, learned from the training split only (events never seen there map to UNK)."""

from __future__ import annotations

import polars as pl

PAD, UNK = 0, 1


class Vocabulary:
    """Event id -> index. Index 0 pads, 1 stands for events never seen in training."""

    def fit(self, events: pl.Series) -> Vocabulary:
        seen = events.explode().drop_nulls().unique().sort().to_list()
        self.events_: list[str] = seen
        self.index_: dict[str, int] = {e: i + 2 for i, e in enumerate(seen)}
        return self

    def __len__(self) -> int:
        return len(self.events_) + 2

    def encode(self, events: pl.Series) -> pl.Series:
        """list[str] -> list[int]; unknown events map to UNK."""
        return events.list.eval(pl.element().replace_strict(self.index_, default=UNK, return_dtype=pl.Int64))

    def to_dict(self) -> dict[str, list[str]]:
        return {"events": self.events_}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Vocabulary:
        return cls().fit(pl.Series([data["events"]]))
