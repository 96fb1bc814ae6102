"""Hyper-parameter search on optuna: resumable (RDB storage), parallel (worker processes or Ray tasks),
pruned per epoch, and cheap (training tensors are built once and shared by every trial).

Objective: the best epoch's validation F1 minus 1e-4 x its validation loss (a tie-break only); the test
split is never touched. Exactly-once over a grid: a restart fails the trials a kill left RUNNING and
re-queues their grid points, and a trial handed a grid point another live trial holds steps aside.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

import optuna
import polars as pl
import torch
from optuna.trial import TrialState, create_trial
from rich.console import Console

from logsieve.artifacts import atomic_write_text, write_json
from logsieve.config import RunConfig
from logsieve.data.load import DataInfo
from logsieve.errors import LogsieveError
from logsieve.features.encoding import EncodedSet, encode_splits
from logsieve.models.rnn import RNNClassifier
from logsieve.search.spaces import Space, base_config, trial_config
from logsieve.search.storage import open_storage, open_study
from logsieve.training.runs import make_splits
from logsieve.training.trainer import EpochRecord, Trainer

STUDY = "logsieve"
LIVE = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING)


@dataclass(frozen=True)
class SearchSettings:
    """How each trial trains and is pruned; recorded in the study so a resume cannot silently change it."""

    preset: str = "improved"
    epochs: int = 12
    patience: int = 3
    pruner: Literal["halving", "median", "none"] = "halving"
    min_epochs: int = 1  # first epoch at which a trial may be pruned (the first rung of halving)
    n_trials: int | None = None  # TPE budget; a grid runs all its points
    seed: int = 0


@dataclass
class Prepared:
    """The split, encoded once: every trial (and every worker) trains on these same tensors."""

    base: RunConfig
    vocab_size: int
    train: EncodedSet
    val: EncodedSet


@dataclass
class Job:
    """Everything a worker needs (pickled once per worker)."""

    storage: str
    study_name: str
    space: Space
    settings: SearchSettings
    data: Prepared
    index: int = 0
    parent: int = field(default_factory=os.getpid)


def score(record: EpochRecord) -> float:
    return record.val_f1 - 1e-4 * record.val_loss


def prepare(sessions: pl.DataFrame, base: RunConfig, source: object) -> Prepared:
    """Split and encode once, as Detector.fit would (vocabulary from train only, de-duplicated rows)."""
    train, val, _ = make_splits(sessions, base, source)
    sets = encode_splits(train, val, base.data.max_len, base.data.truncate, base.train.dedup)
    return Prepared(base, len(sets.vocab), sets.train, sets.val)


# --- recovery and progress ---------------------------------------------------------------------------


def recover(study: optuna.Study) -> int:
    """Fail the trials a killed run left RUNNING and queue their parameters again; returns how many.

    Any grid point held only by failed trials is queued again, so a kill inside this function loses nothing."""
    storage, stale = study._storage, study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        if "grid_id" not in t.system_attrs and t.params:  # TPE: the same parameters again
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    trials = study.get_trials(deepcopy=False)
    held = {t.system_attrs.get("grid_id") for t in trials if t.state in LIVE}
    lost = {t.system_attrs["grid_id"]: t for t in trials if t.state == TrialState.FAIL
            and t.system_attrs.get("grid_id", -1) not in held and "grid_id" in t.system_attrs}  # fmt: skip
    for t in lost.values():  # GridSampler reads the point from these attributes
        keep = {k: t.system_attrs[k] for k in ("grid_id", "search_space")}
        study.add_trial(create_trial(state=TrialState.WAITING, system_attrs={**keep, "retry_of": t.number}))
    return len(stale)


def remaining(study: optuna.Study, space: Space, settings: SearchSettings) -> tuple[int, int]:
    """(points nobody holds yet, trials waiting in the queue)."""
    trials = study._storage.get_all_trials(study._study_id, deepcopy=False, states=LIVE)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    if space.sampler == "grid":
        return space.size - len({t.system_attrs.get("grid_id") for t in trials} - {None}), waiting
    return (settings.n_trials or 0) - len(trials), waiting


def _stop_when_done(space: Space, settings: SearchSettings):
    def callback(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        free, waiting = remaining(study, space, settings)
        if free <= 0 and not waiting:
            study.stop()

    return callback


def _sampler(space: Space, settings: SearchSettings, index: int) -> optuna.samplers.BaseSampler:
    if space.sampler == "grid":  # the same seed everywhere: grid_id -> point must agree across workers
        return optuna.samplers.GridSampler(space.grid(), seed=settings.seed)
    return optuna.samplers.TPESampler(seed=settings.seed + index, constant_liar=True)


def _pruner(settings: SearchSettings) -> optuna.pruners.BasePruner:
    if settings.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=settings.min_epochs, reduction_factor=3)
    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=8, n_warmup_steps=settings.min_epochs)
    return optuna.pruners.NopPruner()


# --- the objective and the workers -----------------------------------------------------------------


class _Duplicate(Exception):
    """This trial was handed a grid point a live trial with a lower number holds (a parallel race)."""


def objective(trial: optuna.Trial, job: Job) -> float:
    storage, space = trial.study._storage, job.space
    grid_id = storage.get_trial_system_attrs(trial._trial_id).get("grid_id")
    if grid_id is not None and any(
        t.number < trial.number and t.system_attrs.get("grid_id") == grid_id
        for t in storage.get_all_trials(trial.study._study_id, deepcopy=False, states=LIVE[:3])
    ):
        trial.set_user_attr("duplicate_of_grid_id", grid_id)
        raise _Duplicate(grid_id)
    cfg = trial_config(job.data.base, space.suggest(trial))
    torch.manual_seed(cfg.seed)
    model = RNNClassifier(job.data.vocab_size, cfg.model)
    start, history = time.perf_counter(), []

    def on_epoch(record: EpochRecord) -> None:
        history.append(record)
        trial.report(score(record), record.epoch)
        if trial.should_prune():
            _record(trial, history, start)
            raise optuna.TrialPruned()

    Trainer(cfg.train, seed=cfg.seed, progress=False).fit(model, job.data.train, job.data.val, on_epoch)
    return score(_record(trial, history, start))


def _record(trial: optuna.Trial, history: list[EpochRecord], start: float) -> EpochRecord:
    best = max(history, key=lambda r: (round(r.val_f1, 6), -r.val_loss))
    for key, value in {"val_f1": best.val_f1, "val_loss": best.val_loss, "best_epoch": best.epoch,
                       "epochs_run": len(history), "seconds": time.perf_counter() - start}.items():  # fmt: skip
        trial.set_user_attr(key, value)
    return best


def work(job: Job) -> int:
    """One worker: one torch thread, trials until the space (or budget) is exhausted."""
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if job.parent != os.getpid():  # a worker process dies with its parent, so a restart finds no orphans
        threading.Thread(target=_watch_parent, args=(job.parent,), daemon=True).start()
    study = optuna.load_study(study_name=job.study_name, storage=open_storage(job.storage),
                              sampler=_sampler(job.space, job.settings, job.index), pruner=_pruner(job.settings))
    before = len(study.get_trials(deepcopy=False))
    free, waiting = remaining(study, job.space, job.settings)
    if free > 0 or waiting:
        study.optimize(lambda t: objective(t, job), catch=(_Duplicate,), gc_after_trial=False,
                       callbacks=[_stop_when_done(job.space, job.settings)])  # fmt: skip
    return len(study.get_trials(deepcopy=False)) - before


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _run_processes(jobs: list[Job], poll) -> None:
    with ProcessPoolExecutor(len(jobs), mp_context=get_context("spawn")) as pool:
        pending = {pool.submit(work, job) for job in jobs}
        while pending:
            done, pending = wait(pending, timeout=2.0, return_when=FIRST_EXCEPTION)
            poll()
            for f in done:
                f.result()  # a worker's exception surfaces here


def _run_ray(jobs: list[Job], poll, address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise LogsieveError("--backend ray needs the ray extra: pip install 'logsieve[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    data = ray.put(jobs[0].data)  # one copy in the object store, shared by every task on a node
    task = ray.remote(num_cpus=1)(_ray_work)
    pending = [task.remote(replace(job, data=None), data) for job in jobs]
    while pending:
        done, pending = ray.wait(pending, num_returns=len(pending), timeout=2.0)
        ray.get(done)  # a task's exception surfaces here
        poll()


def _ray_work(job: Job, data: Prepared) -> int:
    job.data, job.parent = data, os.getpid()
    return work(job)


# --- the search ----------------------------------------------------------------------------------


def run_search(
    sessions: pl.DataFrame,
    data: DataInfo,
    space: Space,
    out: str | Path,
    settings: SearchSettings = SearchSettings(),
    storage: str | None = None,
    study_name: str = STUDY,
    jobs: int = 2,
    backend: Literal["process", "ray"] = "process",
    address: str | None = None,
    overrides: dict[str, Any] | None = None,
    command: str = "",
    console: Console | None = None,
) -> dict[str, Any]:
    """Run (or resume) a search into ``out``: study.db (default storage), trials.csv, search_result.json,
    history.png, importances.png. Returns the search result (best parameters first)."""
    console, out = console or Console(stderr=True), Path(out)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if space.sampler == "tpe" and not settings.n_trials:
        raise LogsieveError(f"space {space.name!r} is sampled by TPE: give a trial budget (--trials N)")
    if jobs < 1:
        raise LogsieveError("--jobs must be at least 1")
    prepared = prepare(sessions, base_config(settings, overrides), data.source)  # bad data fails here
    url = storage or f"sqlite:///{out.resolve() / 'study.db'}"
    store = open_storage(url) if storage else None  # an unreachable storage fails before OUT exists
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = open(out / ".search.lock", "w")  # noqa: SIM115 - closed in the finally below
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # one search per folder: recover() would fail its trials
    except BlockingIOError:
        raise LogsieveError(f"another search is running in {out}") from None
    except OSError as exc:
        raise LogsieveError(f"cannot create output folder {out}: {exc.strerror}") from None
    try:  # the lock is released explicitly, not whenever the file object happens to be collected
        settings_meta = {k: v for k, v in asdict(settings).items() if k != "n_trials"}  # a budget may grow
        meta = {"space": space.to_dict(), "settings": settings_meta, "data_sha256": data.sha256,
                "overrides": overrides or {}}  # fmt: skip
        study = open_study(store or open_storage(url), study_name, meta)
        if backend == "ray" and address and url.startswith("sqlite"):
            console.print("[yellow]warning:[/] Ray workers on other nodes need --storage they can reach (e.g. postgresql://…)")
        if n := recover(study):
            console.print(f"resuming: {n} interrupted trial(s) queued again")
        target, start = space.size or settings.n_trials, time.perf_counter()
        last: list[Any] = [None, start]

        def poll() -> None:  # a line when the counts change, at most every 10 s
            counts, now = _counts(study), time.perf_counter()
            line = f"{counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['RUNNING']} running"
            if line != last[0] and now - last[1] >= 10:
                console.print(f"  {line} (of {target}; {now - start:.0f} s)", highlight=False)
                last[:] = [line, now]

        for _round in range(3):  # GridSampler may stop a worker while a re-queued trial still waits
            free, waiting = remaining(study, space, settings)
            if free <= 0 and not waiting:
                break
            n = max(1, min(jobs, free + waiting))
            batch = [Job(url, study_name, space, settings, prepared, i) for i in range(n)]
            if backend == "ray":
                _run_ray(batch, poll, address)
            elif n == 1:
                work(batch[0])
            else:
                _run_processes(batch, poll)
        if (left := remaining(study, space, settings))[0] > 0 or left[1]:
            console.print("[yellow]search not finished[/]: run the same command again to continue it")
        return write_report(study, space, settings, out, time.perf_counter() - start, command, url, study_name, data, jobs)
    finally:
        lock.close()


def _counts(study: optuna.Study) -> dict[str, int]:
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


# --- outputs -------------------------------------------------------------------------------------


def trials_table(study: optuna.Study) -> pl.DataFrame:
    """One row per trial: state, objective, best-epoch validation figures, cost, parameters."""
    keys = ("val_f1", "val_loss", "best_epoch", "epochs_run", "seconds", "retry_of", "interrupted")
    rows = [{"number": t.number, "state": t.state.name, "value": t.value,
             **{k: t.user_attrs.get(k) for k in keys}, **t.params}
            for t in study.get_trials(deepcopy=False)]  # fmt: skip
    return pl.DataFrame(rows, infer_schema_length=None)


def write_report(study: optuna.Study, space: Space, settings: SearchSettings, out: Path, seconds: float,
                 command: str, url: str, study_name: str, data: DataInfo, jobs: int) -> dict[str, Any]:  # fmt: skip
    """trials.csv, search_result.json (the file the *-grid* presets read) and optuna's plots."""
    table = trials_table(study)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not done:
        raise LogsieveError(f"no trial of study {study_name!r} completed; nothing to report")
    best = max(done, key=lambda t: (round(t.user_attrs["val_f1"], 6), -t.user_attrs["val_loss"]))
    counts = _counts(study)
    result = {
        "best_params": {**space.fixed, **best.params},
        "command": command,
        "objective": "validation F1 of the best epoch (ties: validation loss); test split never used",
        "val_f1": best.user_attrs["val_f1"], "val_loss": best.user_attrs["val_loss"], "best_trial": best.number,
        "base_preset": settings.preset, "settings": asdict(settings), "space": space.to_dict(),
        "trials": {"complete": counts["COMPLETE"], "pruned": counts["PRUNED"], "failed": counts["FAIL"],
                   "grid_points": space.size},
        "seconds": round(seconds, 1), "jobs": jobs, "storage": url, "study_name": study_name,
        "data": data.__dict__, "trial_seconds_sum": round(float(table["seconds"].fill_null(0).sum()), 1),
    }  # fmt: skip
    atomic_write_text(out / "trials.csv", table.write_csv())
    write_json(out / "search_result.json", result)
    result["plots"] = _plots(study, out)
    return result


def _plots(study: optuna.Study, out: Path) -> list[str]:
    """Optuna's optimisation history and parameter importances (skipped when too few trials)."""
    import warnings

    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    plt.switch_backend("Agg")

    written = []
    for name, plot in (("history.png", ovm.plot_optimization_history), ("importances.png", ovm.plot_param_importances)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = plot(study)
            fig = getattr(ax, "figure", None) or ax.flat[0].figure
            fig.set_size_inches(8, 5)
            fig.tight_layout()
            fig.savefig(out / f".{name}.tmp.png", dpi=110)
            os.replace(out / f".{name}.tmp.png", out / name)
            written.append(name)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # e.g. importances need two completed trials with different parameters
        finally:
            plt.close("all")
    return written
