"""Measuring: metrics with anomaly as the positive class, held-out scoring, paired comparisons, reports."""
