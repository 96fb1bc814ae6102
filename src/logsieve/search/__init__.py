"""Hyper-parameter search on optuna: spaces, the resumable parallel runner, its trial storage."""
