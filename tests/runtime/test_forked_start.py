"""Set-up done once in a parent holds in every process forked from it: native crashes kill, titles are left alone."""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from thespian.system import multiprocCommon

from flower_actors.runtime import forked_start


def _in_fork(body: Callable[[], int], timeout: float = 20.0) -> int:
    """Run ``body`` in a forked process; its exit code, or -signal if a signal ended it (fails on a hang)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the forked process did not end within {timeout} s")


def _crash() -> int:
    ctypes.string_at(0)  # SIGSEGV
    return 0


def test_a_process_forked_after_make_faults_fatal_dies_of_a_native_crash() -> None:
    def parent() -> int:  # stands for the Spawner: the test process itself stays untouched
        signal.signal(signal.SIGSEGV, lambda *_: None)  # Thespian's kind of handler: the crash would spin
        forked_start.make_faults_fatal()
        forked_start.make_faults_fatal()  # idempotent
        skipped = multiprocCommon.uncatchable_signals
        if any(skipped.count(s) != 1 for s in forked_start.FATAL_SIGNALS):
            return 3

        def child() -> int:  # stands for a WorkloadClient: it does nothing of its own
            if not faulthandler.is_enabled() or signal.getsignal(signal.SIGSEGV) != signal.SIG_DFL:
                return 4
            forked_start.make_faults_fatal()  # a no-op here: inherited
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)  # faulthandler's stack print
            return _crash()

        return 0 if _in_fork(child) == -signal.SIGSEGV else 5

    assert _in_fork(parent) == 0


def test_without_it_a_python_handler_keeps_a_native_crash_from_killing() -> None:
    """The control: what Thespian's handler does to a crash that ``make_faults_fatal`` prevents."""

    def child() -> int:
        signal.signal(signal.SIGSEGV, lambda *_: None)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(1)  # the crash spins; the alarm ends it
        return _crash()

    assert _in_fork(child) == -signal.SIGALRM


def test_titles_are_left_to_the_actors_in_processes_forked_after() -> None:
    def parent() -> int:
        forked_start.leave_titles_to_actors()

        def child() -> int:
            before = Path("/proc/self/cmdline").read_bytes()
            multiprocCommon.setProcName("WorkloadClient", "ActorAddr-(T|:1234)")
            return 0 if Path("/proc/self/cmdline").read_bytes() == before else 6

        return _in_fork(child)

    assert _in_fork(parent) == 0
