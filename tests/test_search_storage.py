"""The trial store: two workers resuming a search must never both pick up the same waiting (re-queued) trial.

On SQLite optuna's claim of a WAITING trial is a read then a write (SQLite ignores ``SELECT ... FOR UPDATE``),
so two workers that both read WAITING before either writes both "win" and both run and finish the trial; the
second ``tell`` then fails with "Cannot tell a COMPLETE trial". The test forces exactly that interleaving."""

from __future__ import annotations

import contextlib
import threading

import optuna
import pytest
from optuna.storages._rdb import models
from optuna.trial import TrialState, create_trial

from logsieve.search.storage import open_storage


@pytest.fixture
def waiting(tmp_path):
    """(url, trial ids) of a fresh SQLite store holding three WAITING trials."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna_study = optuna.create_study(storage=open_storage(url), study_name="s")
    for _ in range(3):
        optuna_study.add_trial(create_trial(state=TrialState.WAITING))
    return url, [t._trial_id for t in optuna_study.get_trials(deepcopy=False)]


def test_two_workers_never_claim_the_same_waiting_trial(waiting, monkeypatch):
    url, ids = waiting
    both_read = threading.Barrier(2, timeout=2)
    read = models.TrialModel.find_or_raise_by_id.__func__

    def read_then_wait(cls, trial_id, session, for_update=False):  # both workers read before either writes
        trial = read(cls, trial_id, session, for_update)
        with contextlib.suppress(threading.BrokenBarrierError):  # a claim that does not read first never meets
            both_read.wait()  # the other worker here
        return trial

    monkeypatch.setattr(models.TrialModel, "find_or_raise_by_id", classmethod(read_then_wait))
    stores = [open_storage(url), open_storage(url)]
    for trial_id in ids:
        both_read.reset()
        won: list[bool] = []

        def claim(store, trial_id=trial_id, won=won):
            won.append(store.set_trial_state_values(trial_id, TrialState.RUNNING))

        workers = [threading.Thread(target=claim, args=(s,)) for s in stores]
        for w in workers:
            w.start()
        for w in workers:
            w.join(30)
        assert sorted(won) == [False, True], f"trial {trial_id}: claims {won}"


def test_claim_refuses_a_trial_that_is_not_waiting(waiting):
    url, ids = waiting
    store = open_storage(url)
    assert store.set_trial_state_values(ids[0], TrialState.RUNNING)
    assert not store.set_trial_state_values(ids[0], TrialState.RUNNING)  # already running
    assert store.set_trial_state_values(ids[0], TrialState.COMPLETE, [0.5])
    assert store.get_trial(ids[0]).state == TrialState.COMPLETE and store.get_trial(ids[0]).value == 0.5
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        store.set_trial_state_values(ids[0], TrialState.RUNNING)
    optuna_study = optuna.load_study(study_name="s", storage=store)
    popped = {optuna_study.ask().number for _ in range(2)}
    assert popped == {1, 2}  # the remaining waiting trials, each once
    assert optuna_study.ask().number == 3  # the queue is empty: a new trial
