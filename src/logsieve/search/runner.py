"""Hyper-parameter search on optuna: resumable (RDB storage), parallel (worker processes or Ray tasks),
pruned per epoch, and cheap (training tensors are built once and shared by every trial).

Objective: the best epoch's validation F1 minus 1e-4 x its validation loss (a tie-break only); the test
split is never touched. Exactly-once over a grid: a restart fails the trials a kill left RUNNING and
re-queues their grid points, and a trial handed a grid point another live trial holds steps aside.

Naming: optuna calls its trial container a study; here it is the *trial store* (``optuna_study``), because
"study" in logsieve means the preset comparison (``logsieve study``). Outputs live in ``search.report``.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
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

from logsieve.config import RunConfig
from logsieve.data.load import DataInfo
from logsieve.errors import LogsieveError
from logsieve.features.encoding import EncodedSet
from logsieve.features.prepare import prepare_training_data
from logsieve.models.rnn import RNNClassifier
from logsieve.search.interrupt import stop_message, stop_signals
from logsieve.search.report import state_counts, write_report
from logsieve.search.settings import DEFAULT_SETTINGS, TRIALS_DB, TRIALS_NAME, SearchSettings
from logsieve.search.spaces import Space, base_config, trial_config
from logsieve.search.storage import open_storage, open_trials
from logsieve.training.runs import make_splits
from logsieve.training.trainer import EpochRecord, Trainer, best_record

LIVE = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING)


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
    trials_name: str
    space: Space
    settings: SearchSettings
    data: Prepared
    index: int = 0
    parent: int = field(default_factory=os.getpid)


def score(record: EpochRecord) -> float:
    return record.val_f1 - 1e-4 * record.val_loss


def prepare(sessions: pl.DataFrame, base: RunConfig, source: object) -> Prepared:
    """Split and encode once with the function Detector.fit uses (augmentation, vocabulary from train only,
    de-duplicated rows), so a trial trains on exactly the rows a run of its config would."""
    train, val, _ = make_splits(sessions, base, source)
    sets = prepare_training_data(train, val, base)
    return Prepared(base, len(sets.vocab), sets.train, sets.val)


# --- recovery and progress ---------------------------------------------------------------------------


def recover(optuna_study: optuna.Study) -> int:
    """Fail the trials a killed run left RUNNING and queue their parameters again; returns how many.

    Any grid point held only by failed trials is queued again, so a kill inside this function loses nothing."""
    storage, stale = optuna_study._storage, optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        if "grid_id" not in t.system_attrs and t.params:  # TPE: the same parameters again
            optuna_study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    trials = optuna_study.get_trials(deepcopy=False)
    held = {t.system_attrs.get("grid_id") for t in trials if t.state in LIVE}
    lost = {t.system_attrs["grid_id"]: t for t in trials if t.state == TrialState.FAIL
            and t.system_attrs.get("grid_id", -1) not in held and "grid_id" in t.system_attrs}  # fmt: skip
    for t in lost.values():  # GridSampler reads the point from these attributes
        keep = {k: t.system_attrs[k] for k in ("grid_id", "search_space")}
        optuna_study.add_trial(create_trial(state=TrialState.WAITING, system_attrs={**keep, "retry_of": t.number}))
    return len(stale)


def remaining(optuna_study: optuna.Study, space: Space, settings: SearchSettings) -> tuple[int, int]:
    """(points nobody holds yet, trials waiting in the queue)."""
    trials = optuna_study._storage.get_all_trials(optuna_study._study_id, deepcopy=False, states=LIVE)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    if space.sampler == "grid" and (size := space.size) is not None:  # always known: a grid has no ranges
        return size - len({t.system_attrs.get("grid_id") for t in trials} - {None}), waiting
    return (settings.n_trials or 0) - len(trials), waiting


def _stop_when_done(space: Space, settings: SearchSettings):
    def callback(optuna_study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        free, waiting = remaining(optuna_study, space, settings)
        if free <= 0 and not waiting:
            optuna_study.stop()

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
    """Store the trial's best epoch (the rule early stopping restores) and its cost on the trial."""
    best = best_record(history)
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
    optuna_study = optuna.load_study(study_name=job.trials_name, storage=open_storage(job.storage),
                                     sampler=_sampler(job.space, job.settings, job.index),
                                     pruner=_pruner(job.settings))  # fmt: skip
    before = len(optuna_study.get_trials(deepcopy=False))
    free, waiting = remaining(optuna_study, job.space, job.settings)
    if free > 0 or waiting:
        optuna_study.optimize(lambda t: objective(t, job), catch=(_Duplicate,), gc_after_trial=False,
                              callbacks=[_stop_when_done(job.space, job.settings)])  # fmt: skip
    return len(optuna_study.get_trials(deepcopy=False)) - before


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _run_processes(jobs: list[Job], poll) -> None:
    with ProcessPoolExecutor(len(jobs), mp_context=get_context("spawn")) as pool:
        pending = {pool.submit(work, job) for job in jobs}
        try:
            while pending:
                done, pending = wait(pending, timeout=2.0, return_when=FIRST_EXCEPTION)
                poll()
                for f in done:
                    f.result()  # a worker's exception surfaces here
        except KeyboardInterrupt:  # stopped (Ctrl-C / SIGTERM): end the workers now, not after their trials
            for process in list(pool._processes.values()):  # no public API; their trials are re-queued on resume
                process.terminate()
            raise


def _run_ray(jobs: list[Job], poll, address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise LogsieveError("--backend ray needs the ray extra: pip install 'logsieve[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    data = ray.put(jobs[0].data)  # one copy in the object store, shared by every task on a node
    task = ray.remote(num_cpus=1)(_ray_work)
    # the data travels once through the object store, not with each job; _ray_work puts it back
    pending = [task.remote(replace(job, data=None), data) for job in jobs]  # type: ignore[arg-type]
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
    settings: SearchSettings = DEFAULT_SETTINGS,
    storage: str | None = None,
    trials_name: str = TRIALS_NAME,
    jobs: int = 2,
    backend: Literal["process", "ray"] = "process",
    address: str | None = None,
    overrides: dict[str, Any] | None = None,
    command: str = "",
    console: Console | None = None,
) -> dict[str, Any]:
    """Run (or resume) a search into ``out``: study.db (default storage), trials.csv, search_result.json,
    history.png, importances.png. Returns the search result (best parameters first).

    ``trials_name`` is the CLI's --study-name (the optuna study in the storage) and the default storage stays
    OUT/study.db: both keep their old names so searches started before can be resumed."""
    console, out = console or Console(stderr=True), Path(out)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if space.sampler == "tpe" and not settings.n_trials:
        raise LogsieveError(f"space {space.name!r} is sampled by TPE: give a trial budget (--trials N)")
    if jobs < 1:
        raise LogsieveError("--jobs must be at least 1")
    prepared = prepare(sessions, base_config(settings, overrides), data.source)  # bad data fails here
    url = storage or f"sqlite:///{out.resolve() / TRIALS_DB}"
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
        optuna_study = open_trials(store or open_storage(url), trials_name, meta)
        if backend == "ray" and address and url.startswith("sqlite"):
            console.print(
                "[yellow]warning:[/] Ray workers on other nodes need --storage they can reach (e.g. postgresql://…)"
            )
        if n := recover(optuna_study):
            console.print(f"resuming: {n} interrupted trial(s) queued again")
        target, start = space.size or settings.n_trials, time.perf_counter()
        last: list[Any] = [None, start]

        def poll() -> None:  # a line when the counts change, at most every 10 s
            counts, now = state_counts(optuna_study), time.perf_counter()
            line = f"{counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['RUNNING']} running"
            if line != last[0] and now - last[1] >= 10:
                console.print(f"  {line} (of {target}; {now - start:.0f} s)", highlight=False)
                last[:] = [line, now]

        try:
            with stop_signals():
                for _round in range(3):  # GridSampler may stop a worker while a re-queued trial still waits
                    free, waiting = remaining(optuna_study, space, settings)
                    if free <= 0 and not waiting:
                        break
                    n = max(1, min(jobs, free + waiting))
                    batch = [Job(url, trials_name, space, settings, prepared, i) for i in range(n)]
                    if backend == "ray":
                        _run_ray(batch, poll, address)
                    elif n == 1:
                        work(batch[0])
                    else:
                        _run_processes(batch, poll)
        except KeyboardInterrupt:
            return _stopped(optuna_study, space, settings, out, time.perf_counter() - start, command, url,
                            trials_name, data, jobs, console)  # fmt: skip
        if (left := remaining(optuna_study, space, settings))[0] > 0 or left[1]:
            console.print("[yellow]search not finished[/]: run the same command again to continue it")
        seconds = time.perf_counter() - start
        return write_report(optuna_study, space, settings, out, seconds, command, url, trials_name, data, jobs)
    finally:
        lock.close()


def _stopped(optuna_study: optuna.Study, space: Space, settings: SearchSettings, out: Path, seconds: float,
             command: str, url: str, trials_name: str, data: DataInfo, jobs: int,
             console: Console) -> dict[str, Any]:  # fmt: skip
    """After Ctrl-C / SIGTERM: the report of the completed trials, and how to go on."""
    counts = state_counts(optuna_study)
    if not counts["COMPLETE"]:
        raise LogsieveError("search interrupted before any trial completed: nothing to report; "
                            "run the same command again to resume")  # fmt: skip
    result = write_report(optuna_study, space, settings, out, seconds, command, url, trials_name, data, jobs)
    console.print(f"[yellow]{stop_message(counts['COMPLETE'], counts['PRUNED'], space.size or settings.n_trials)}[/]")
    return {**result, "interrupted": True}
