"""``LeanProcess``: a bare fork that behaves, for Thespian, as a ``multiprocessing`` process does."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing import process
from pathlib import Path

import pytest

from flower_actors.runtime.lean_fork import LeanContext, LeanProcess, use_lean_forks


def _write(path: str, text: str) -> None:
    Path(path).write_text(text)


def _exit_with(code: object) -> None:
    raise SystemExit(code)


def _raise() -> None:
    raise RuntimeError("the target failed")


def _sleep() -> None:
    time.sleep(30)


def _children_seen(path: str) -> None:
    Path(path).write_text(f"{len(process._children)} {multiprocessing.current_process().daemon}")  # type: ignore[attr-defined]


def test_the_target_runs_in_a_child_and_its_exit_is_reaped(tmp_path: Path) -> None:
    out = tmp_path / "out"
    child = LeanProcess(target=_write, args=(str(out), "hello"), name="writer")
    child.start()
    assert child.pid and child.pid != os.getpid() and child in process._children  # type: ignore[attr-defined]
    child.join(10)
    assert out.read_text() == "hello" and child.exitcode == 0
    assert not child.is_alive() and child not in process._children  # type: ignore[attr-defined]
    assert "writer" in repr(child)


@pytest.mark.parametrize("code, expected", [(None, 0), (3, 3), ("a message", 1)])
def test_exit_codes_are_what_multiprocessing_gives(code: object, expected: int) -> None:
    child = LeanProcess(target=_exit_with, args=(code,))
    child.start()
    child.join(10)
    assert child.exitcode == expected


def test_an_exception_is_printed_and_exits_1(capfd: pytest.CaptureFixture[str]) -> None:
    child = LeanProcess(target=_raise)
    child.start()
    child.join(10)
    assert child.exitcode == 1
    assert "RuntimeError: the target failed" in capfd.readouterr().err


def test_a_killed_child_is_seen_dead_with_its_signal() -> None:
    child = LeanProcess(target=_sleep)
    child.start()
    assert child.is_alive()
    child.join(0.05)
    assert child.exitcode is None, "join with a timeout returns while it still runs"
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert child.exitcode == -signal.SIGKILL


def test_a_child_starts_with_no_children_of_its_parent(tmp_path: Path) -> None:
    sleeper = LeanProcess(target=_sleep)
    sleeper.start()
    try:
        out = tmp_path / "seen"
        child = LeanProcess(target=_children_seen, args=(str(out),))
        child.start()
        child.join(10)
        assert out.read_text().split()[0] == "0"
    finally:
        assert sleeper.pid is not None
        os.kill(sleeper.pid, signal.SIGKILL)
        sleeper.join(10)


def test_the_context_forks_lean_processes_and_lends_everything_else() -> None:
    inner = multiprocessing.get_context("fork")
    context = LeanContext(inner)
    assert context.Process is LeanProcess and context.Pipe == inner.Pipe
    assert context.get_start_method() == "fork"


def test_use_lean_forks_needs_an_actor_of_thespian() -> None:
    from flower_actors import ThespianIncompatible

    with pytest.raises(ThespianIncompatible):
        use_lean_forks(object())


def test_multiprocessing_can_start_processes_beside_a_lean_one_it_lists() -> None:
    """``multiprocessing`` cleans its children list on every start: a lean child in it answers ``_popen.poll()``."""
    lean = LeanProcess(target=_sleep)
    lean.start()
    try:
        usual = multiprocessing.get_context("fork").Process(target=_exit_with, args=(0,))
        usual.start()
        usual.join(10)
        assert usual.exitcode == 0 and lean in multiprocessing.active_children()
    finally:
        assert lean.pid is not None
        os.kill(lean.pid, signal.SIGKILL)
        lean.join(10)
    assert lean not in multiprocessing.active_children()
