"""Run our programs as subprocesses and find every process they left, by an environment mark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from flower_actors.runtime.proc import process_alive

REPO = Path(__file__).resolve().parent.parent
MARK_VAR = "FLOWER_ACTORS_TEST_MARK"


def marked_env() -> dict[str, str]:
    """An environment whose processes (and every fork of them) carry a unique mark."""
    env = dict(os.environ)
    env[MARK_VAR] = uuid.uuid4().hex
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def marked_processes(env: dict[str, str]) -> list[int]:
    """Live processes that carry ``env``'s mark."""
    needle = f"{MARK_VAR}={env[MARK_VAR]}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0") and process_alive(int(entry)):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def assert_none_left(env: dict[str, str], wait: float = 5.0) -> None:
    deadline = time.monotonic() + wait
    while marked_processes(env) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = marked_processes(env)
    for pid in left:  # do not leak into the next test, but fail this one
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"processes left behind: {left}"


def run_python(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in the repository; capture output (hangs, and fails, if a process keeps the pipe)."""
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def popen_python(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[Any]:
    """Start ``python ARGS`` as a user's terminal would: SIGINT handled even if this process ignores it.

    A job started in the background by a shell without job control (as CI
    may run the suite) inherits an ignored SIGINT, and Python then never
    turns Ctrl-C into ``KeyboardInterrupt``.
    """
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
