"""Log-parsing quality: grouping accuracy (Zhu et al., ICSE-SEIP 2019, the loghub "parsing accuracy").

A line counts as correct only when the set of lines sharing its mined id is exactly the set of lines sharing its
true id. Ids themselves never need to agree, so any parser's numbering can be scored against any ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def grouping_accuracy(predicted: pl.Series | Sequence[str], truth: pl.Series | Sequence[str]) -> float:
    """Share of lines whose mined group equals their ground-truth group (1.0 = perfect, split or merged = wrong)."""
    df = pl.DataFrame({"pred": pl.Series(predicted).cast(pl.String), "truth": pl.Series(truth).cast(pl.String)})
    if df.is_empty():
        raise ValueError("grouping_accuracy needs at least one line")
    truth_sizes = df.group_by("truth").len("truth_size")
    groups = df.group_by("pred").agg(
        pl.len().alias("size"), pl.col("truth").n_unique().alias("n_truth"), pl.col("truth").first()
    )
    # A mined group is right as a whole when it holds one true group, entirely.
    whole = (pl.col("n_truth") == 1) & (pl.col("size") == pl.col("truth_size"))
    correct = groups.join(truth_sizes, on="truth").filter(whole)
    return int(correct["size"].sum()) / df.height
