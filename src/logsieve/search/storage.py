"""Where a search keeps its trials: an Optuna RDB storage that several workers may open at once, holding
one optuna study per search (the trial store)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import optuna
from sqlalchemy.exc import IntegrityError, OperationalError

from logsieve.errors import LogsieveError

SCHEMA_RACE_RETRIES = 8  # workers that start together on a fresh database race to create its tables


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage, or a one-line error naming the URL (checked before anything is written).

    Optuna creates the schema when it opens a database; two processes doing that at the same moment make
    one of them fail ("UNIQUE constraint failed", "table … already exists"). The loser retries: by then
    the schema exists and opening only reads it."""
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in itertools.count():
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as exc:  # sqlalchemy errors, missing DB drivers, malformed URLs
            if attempt < SCHEMA_RACE_RETRIES and _schema_race(exc):
                time.sleep(0.05 * 2**attempt)
                continue
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LogsieveError(f"cannot open storage {url!r}: {first}") from None


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
