"""Actor processes forked without ``multiprocessing``'s bootstrap: ``use_lean_forks``.

Thespian starts an actor's process through a ``multiprocessing`` context:
``Process(target=startChild, args=..., name=...)``, ``start()``, and later
``pid``, ``is_alive()`` and ``join()``. The "fork" method costs more than
the fork: two pipes in the parent per child (``thespian_compat`` closes
them at once anyway), and in the child a bootstrap that replaces stdin,
clears finalizers, runs after-fork hooks and builds process records. Each
page those touch is a copy-on-write fault: ~145 of them, ~0.5 ms and
~0.6 MB of private memory in every WorkloadClient, a tenth of its start-up.

``LeanProcess`` is the same ``os.fork`` followed, in the child, by what a
process forked this way must still do (its own ``multiprocessing`` children
and counters start afresh, after-fork callbacks run if any are registered,
the main thread learns its new id), the target, and ``os._exit`` with the
exit code ``multiprocessing`` would give (an exception is printed, as it
prints it). The parent reaps it with ``waitpid``, as Thespian's liveness
checks do.

Only the actors that start WorkloadClients use it (``use_lean_forks`` on the
Spawner); an app that uses ``multiprocessing`` inside a WorkloadClient still
can, since its context is the usual one.

Inside ``deferred_forks()`` a ``start()`` only records the process; the
caller forks each later (``fork``), back to back. Thespian's bookkeeping for
a new child runs in ``createActor`` around ``start()``: deferred, all of it
is done before the first fork of a batch instead of between two forks,
where each page it writes is copied and the old copy left to the child
forked before.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ThespianIncompatible

__all__ = ["LeanContext", "LeanProcess", "deferred_forks", "use_lean_forks"]

_deferred: list[LeanProcess] | None = None
"""Processes whose ``start()`` was deferred (inside ``deferred_forks``); ``None``: ``start()`` forks."""


@contextmanager
def deferred_forks() -> Iterator[list[LeanProcess]]:
    """Within: ``LeanProcess.start()`` records the process in the list yielded; the caller forks each (``fork``)."""
    global _deferred
    outer, _deferred = _deferred, []
    try:
        yield _deferred
    finally:
        _deferred = outer


class LeanProcess:
    """What Thespian asks of a child process, forked with nothing of ``multiprocessing``'s bootstrap."""

    def __init__(
        self, target: Callable[..., Any], args: tuple[Any, ...] = (), name: str | None = None, **_: Any
    ) -> None:
        self._target = target
        self._args = args
        self.name = name or "LeanProcess"
        self.pid: int | None = None
        self.exitcode: int | None = None
        self._popen = self  # what multiprocessing's clean-up of its children list asks: ``_popen.poll()``

    def __repr__(self) -> str:
        return f"<LeanProcess {self.name} pid={self.pid} exitcode={self.exitcode}>"

    def start(self) -> None:
        from multiprocessing import process

        if _deferred is not None:
            _deferred.append(self)
        else:
            self.fork()
        process._children.add(self)  # type: ignore[attr-defined]  # Thespian's detach_child removes it

    def fork(self) -> None:
        """Fork the process now (``start`` does, unless deferred)."""
        pid = os.fork()
        if pid == 0:
            os._exit(self._run_child())
        self.pid = pid

    def _run_child(self) -> int:
        code = 1
        try:
            _reset_multiprocessing_state()
            self._target(*self._args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    if stream is not None:
                        stream.flush()
                except (OSError, ValueError):
                    pass
        return code

    def _reap(self, flags: int) -> bool:
        """Collect the exit status if the process ended; whether it did."""
        if self.exitcode is not None:
            return True
        if self.pid is None:
            return False
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # reaped elsewhere: it ended
            self.exitcode = -1
            return True
        if pid == 0:
            return False
        self.exitcode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return True

    def poll(self) -> int | None:
        """The exit code if it ended (reaped now), else ``None``."""
        return self.exitcode if self._reap(os.WNOHANG) else None

    def is_alive(self) -> bool:
        if self.pid is None:
            return False
        if self._reap(os.WNOHANG):
            self._forget()
            return False
        return True

    def join(self, timeout: float | None = None) -> None:
        if timeout is None:
            self._reap(0)
        else:
            deadline = time.monotonic() + timeout
            while not self._reap(os.WNOHANG) and time.monotonic() < deadline:
                time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
        if self.exitcode is not None:
            self._forget()

    def _forget(self) -> None:
        from multiprocessing import process

        process._children.discard(self)  # type: ignore[attr-defined]


def _reset_multiprocessing_state() -> None:
    """In the child: what ``multiprocessing``'s bootstrap does that a forked actor process still needs."""
    from multiprocessing import process, util

    process._children = set()  # type: ignore[attr-defined]  # its own children only
    process._process_counter = itertools.count(1)  # type: ignore[attr-defined]
    if util._afterfork_registry:  # type: ignore[attr-defined]  # multiprocessing objects made before the fork
        util._finalizer_registry.clear()  # type: ignore[attr-defined]
        util._run_after_forkers()  # type: ignore[attr-defined]
    main = threading.main_thread()
    if hasattr(main, "_set_native_id"):
        main._set_native_id()


class LeanContext:
    """A ``multiprocessing`` context whose ``Process`` is ``LeanProcess``; everything else is ``inner``'s."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.Process = LeanProcess

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def use_lean_forks(actor: Any) -> None:
    """Make ``actor`` fork the actors it creates from now on as ``LeanProcess``es (idempotent)."""
    manager = getattr(actor, "_myRef", None)
    if manager is None or not hasattr(manager, "mpcontext"):
        raise ThespianIncompatible("an actor has no _myRef.mpcontext in this Thespian; cannot choose how it forks")
    if not isinstance(manager.mpcontext, LeanContext):
        import multiprocessing

        manager.mpcontext = LeanContext(manager.mpcontext or multiprocessing.get_context("fork"))
