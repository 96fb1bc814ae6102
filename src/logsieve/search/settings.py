"""What a search's trials share, as plain data: the one home of the search defaults.

Kept free of optuna and torch so the command line can read its option defaults from here cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Name of the optuna study (the trial store) inside the storage; the CLI option keeps optuna's word,
# --study-name, and searches started before the rename resume under this same name.
TRIALS_NAME = "logsieve"
# The default storage file in --out: sqlite:///OUT/study.db (kept so existing searches resume).
TRIALS_DB = "study.db"


@dataclass(frozen=True)
class SearchSettings:
    """How each trial trains and is pruned; recorded in the trial store so a resume cannot silently change it."""

    preset: str = "improved"
    epochs: int = 12
    patience: int = 3
    pruner: Literal["halving", "median", "none"] = "halving"
    min_epochs: int = 1  # first epoch at which a trial may be pruned (the first rung of halving)
    n_trials: int | None = None  # TPE budget; a grid runs all its points
    seed: int = 0


DEFAULT_SETTINGS = SearchSettings()  # what `logsieve search` and run_search use when not told otherwise
