"""Stopping cleanly: SIGTERM (what Slurm and torchrun send) becomes an exception like Ctrl-C's, and long loops
can defer both to a point where their state is whole (a training step done, a checkpoint written)."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Stopped(BaseException):
    """The process was asked to stop by a signal (SIGTERM or SIGINT); like KeyboardInterrupt, not an error.

    A `message` says what was kept (a loop that stopped cleanly); without one, a caller may say it (`explained`)."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")
        self.signum, self.explained = signum, bool(message)


def _raise(signum: int, frame) -> None:
    raise Stopped(signum)


def install() -> None:
    """SIGTERM raises `Stopped` (so `finally` blocks and temporary-file cleanup run, as for Ctrl-C)."""
    signal.signal(signal.SIGTERM, _raise)


class Deferred:
    """The first SIGTERM/SIGINT is only recorded (`signum`); a second one stops at once."""

    signum: int | None = None

    def _note(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise Stopped(signum)
        self.signum = signum


@contextmanager
def deferred() -> Iterator[Deferred]:
    """Within the block, a stop signal waits for the code to poll `.signum` (main thread only)."""
    d = Deferred()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield d
        return
    old = {s: signal.signal(s, d._note) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield d
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def die_with_parent() -> None:
    """This process gets SIGTERM (and stops cleanly) when its parent dies, even by `kill -9` (Linux; elsewhere a
    no-op). Also a `preexec_fn` for a child process."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
