"""Where a search keeps its trials: an Optuna RDB storage that several workers may open at once, holding
one optuna study per search (the trial store)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import optuna
from optuna.storages._rdb import models
from optuna.trial import TrialState
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, OperationalError

from logsieve.errors import LogsieveError

SCHEMA_RACE_RETRIES = 8  # workers that start together on a fresh database race to create its tables


class ClaimingStorage(optuna.storages.RDBStorage):
    """An RDB storage whose claim of a WAITING trial is one conditional UPDATE, so exactly one worker wins it.

    Optuna claims a queued trial (``Study.ask`` -> ``set_trial_state_values(id, RUNNING)``) by reading its
    state and then writing it. SQLite ignores ``SELECT ... FOR UPDATE``, so two workers resuming a search can
    both read WAITING before either writes, both run the trial, and the second to finish fails with "Cannot
    tell a COMPLETE trial". ``UPDATE ... WHERE state = WAITING`` is atomic on every database."""

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        if state != TrialState.RUNNING or values is not None:
            return super().set_trial_state_values(trial_id, state, values)
        trials = models.TrialModel
        claim = (
            update(trials)
            .where(trials.trial_id == trial_id, trials.state == TrialState.WAITING)
            .values(state=TrialState.RUNNING, datetime_start=datetime.now())
        )
        with self.engine.begin() as connection:
            if connection.execute(claim).rowcount == 1:
                return True
        return super().set_trial_state_values(trial_id, state)  # lost: False, or optuna's error if finished


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage, or a one-line error naming the URL (checked before anything is written).

    Optuna creates the schema when it opens a database; two processes doing that at the same moment make
    one of them fail ("UNIQUE constraint failed", "table … already exists"). The loser retries: by then
    the schema exists and opening only reads it."""
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in itertools.count():
        try:
            return ClaimingStorage(url, engine_kwargs=kwargs)
        except Exception as exc:  # sqlalchemy errors, missing DB drivers, malformed URLs
            if attempt < SCHEMA_RACE_RETRIES and _schema_race(exc):
                time.sleep(0.05 * 2**attempt)
                continue
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LogsieveError(f"cannot open storage {url!r}: {first}") from None
    raise AssertionError("unreachable: the loop above returns or raises")


def open_trials(storage: optuna.storages.RDBStorage, name: str, meta: dict[str, Any]) -> optuna.Study:
    """Create the trial store ``name`` (an optuna study; "study" in logsieve means the preset comparison),
    or load it after checking it was made with the same space, settings, data and overrides."""
    optuna_study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
    stored = optuna_study.user_attrs.get("search")
    if stored is None:
        optuna_study.set_user_attr("search", meta)
    elif stored != meta:
        diff = sorted(k for k in meta if stored.get(k) != meta[k])
        raise LogsieveError(f"the trials {name!r} in this storage were made with a different {', '.join(diff)}; "
                            "use another --out, --storage or --study-name")  # fmt: skip
    return optuna_study


def _schema_race(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    return isinstance(exc, OperationalError) and ("already exists" in str(exc) or "database is locked" in str(exc))
