"""What every actor process a parent forks would set up alike, set up once in the parent.

A forked process inherits its parent's signal dispositions, ``faulthandler``
and module globals. Set up in each new WorkloadClient, these cost it its
own copy of every page the set-up touched: making native faults fatal was
~55 page faults and ~22 private pages (0.09 MB) in each, and Thespian's
naming of the process (its address formatted, then ``setproctitle``), which
``SafeActor`` renames at once, ~0.03 MB. The Spawner calls both before it
forks (``node/spawner.py``), so its children start with them done.
"""

from __future__ import annotations

import faulthandler
import signal

from .thespian_compat import _require

__all__ = ["FATAL_SIGNALS", "leave_titles_to_actors", "make_faults_fatal"]

FATAL_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL") if hasattr(signal, name)
)
"""The signals of a crash in native code."""

_fatal = False  # this process, or the one it was forked from, made faults fatal


def make_faults_fatal() -> None:
    """Let a crash in native code kill this process and every actor process forked from it later.

    Thespian sets a Python handler for every catchable signal in each actor
    process. For SIGSEGV, SIGBUS, SIGFPE and SIGILL that handler returns,
    the faulting instruction runs again, and the process spins forever
    instead of dying. Here they get their default action behind
    ``faulthandler`` (which prints the Python stack to stderr first), and
    Thespian's start of a child forked from here leaves them alone, so the
    child inherits this and needs no set-up of its own. Idempotent; a
    process forked after the call finds it done.
    """
    global _fatal
    if _fatal:
        return
    from thespian.system import multiprocCommon

    _require(multiprocCommon, "uncatchable_signals")
    for signum in FATAL_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    faulthandler.enable(all_threads=True)
    skipped = multiprocCommon.uncatchable_signals
    skipped.extend(signum for signum in FATAL_SIGNALS if signum not in skipped)
    _fatal = True


def leave_titles_to_actors() -> None:
    """Thespian's start of a process forked from here no longer sets the process's title.

    It formats the new actor's address and calls ``setproctitle`` with it;
    a ``SafeActor`` names its process in ``__init__`` and a WorkloadClient
    again with its workload, so the first title was never seen. Only for
    a process whose children are all ``SafeActor``\\ s (the Spawner).
    """
    from thespian.system import multiprocCommon

    _require(multiprocCommon, "setProcName")
    multiprocCommon.setProcName = _no_title


def _no_title(name: str, address: object) -> None:
    return None
