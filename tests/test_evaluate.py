"""Held-out evaluation helpers: the unseen subset, the label conflicts that cap what a model can reach,
and the paired comparison of two models over splits."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from logsieve.evaluation.evaluate import conflict_summary, label_conflicts, seen_mask
from logsieve.evaluation.metrics import paired_comparison


def sessions(rows: list[tuple[int, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"session_id": [f"s{i}" for i in range(len(rows))], "label": [r[0] for r in rows],
         "events": [r[1].split() for r in rows]},
        schema={"session_id": pl.String, "label": pl.Int8, "events": pl.List(pl.String)},
    )  # fmt: skip


TRAIN = sessions([
    (1, "A B C"), (1, "C B A"), (0, "B A C"),  # counts {A,B,C}: 2 anomalous, 1 normal
    (0, "A A"), (0, "A A"),                     # counts {A,A}: normal only
    (1, "D"), (0, "D"),                         # counts {D}: a tie
])  # fmt: skip


def test_seen_mask_is_exact_sequence_membership():
    test = sessions([(0, "A B C"), (0, "B C A"), (0, "A A")])
    assert seen_mask(TRAIN, test).tolist() == [True, False, True]


def test_count_conflicts_are_minority_labels_of_count_twins():
    test = sessions([
        (0, "C A B"),  # normal, but its count twins are mostly anomalous -> conflict
        (1, "B A C"),  # anomalous, agrees with the majority of its count twins (not with its sequence twin)
        (1, "A A"),    # anomalous, count twins all normal -> conflict
        (1, "D"),      # tie in training: no majority, no conflict
        (1, "E E"),    # never seen: no conflict
    ])  # fmt: skip
    assert label_conflicts(TRAIN, test, "counts").tolist() == [True, False, True, False, False]
    # as exact sequences "B A C" has one normal twin and "A A" two
    assert label_conflicts(TRAIN, test, "sequence").tolist() == [False, True, True, False, False]


def test_conflict_summary_gives_forced_errors_and_the_f1_ceiling():
    test = sessions([(0, "C A B"), (1, "B A C"), (1, "A A"), (1, "D"), (0, "E")])
    summary = conflict_summary(TRAIN, test)
    assert summary["counts"]["fp"] == 1 and summary["counts"]["fn"] == 1
    tp = 3 - 1  # three anomalies, one forced miss
    assert np.isclose(summary["counts"]["f1_ceiling"], 2 * tp / (2 * tp + 1 + 1))
    assert summary["sequence"] == {"fp": 0, "fn": 2, "f1_ceiling": 2 * 1 / (2 * 1 + 2)}


def test_paired_comparison_counts_wins_ties_losses_and_gives_the_exact_sign_test():
    a = [0.999, 0.995, 0.990, 0.990, 0.99, 0.98, 0.97, 0.96, 0.95, 0.94]
    b = [0.998, 0.996, 0.990, 0.991, 1.00, 0.99, 0.98, 0.97, 0.96, 0.99]
    record = paired_comparison(a, b)
    assert (record["wins"], record["ties"], record["losses"]) == (1, 1, 8)
    assert record["sign_test_p"] == pytest.approx(2 * (1 + 9) / 2**9)  # P(<= 1 of 9 fair coin flips), twice
    assert paired_comparison([0.9] * 3, [0.9] * 3)["sign_test_p"] == 1.0  # all ties: no evidence either way
    assert paired_comparison([1.0] * 10, [0.9] * 10)["sign_test_p"] == pytest.approx(2 / 2**10)
    with pytest.raises(ValueError, match="same splits"):
        paired_comparison([0.9], [0.9, 0.8])
