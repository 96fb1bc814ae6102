"""Stopping a search on purpose: Ctrl-C (SIGINT) and SIGTERM both end it with a report of the trials done.

A search can run for hours; whoever stops it wants the best-so-far result and to know how to go on, not a
silent exit. The trials a stop cuts short stay RUNNING (or FAIL) in the trial store, and the next run of the
same command re-queues them (``runner.recover``), so nothing is lost by stopping.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def stop_signals() -> Iterator[None]:
    """Inside: SIGTERM raises KeyboardInterrupt like SIGINT does (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_message(complete: int, pruned: int, target: int | None) -> str:
    """What a stopped search says: how far it got and that the same command resumes it."""
    of = f" of {target}" if target else ""
    return (
        f"search interrupted: {complete} trial(s) complete, {pruned} pruned{of}; wrote trials.csv and the "
        "best-so-far search_result.json. Run the same command again to resume"
    )
