"""The work a benchmark task does, identical in every system, and the app that runs it in ours."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flower_actors import Client, TaskIns

__all__ = ["BenchClient", "Job", "Record", "calibrate_spin", "run_job", "spin"]


@dataclass(frozen=True)
class Job:
    """One task of a scenario: when it arrives, for which workload, and what work it does."""

    index: int
    at: float
    workload: int
    kind: str
    """``"sleep"`` (seconds), ``"cpu"`` (spin iterations) or ``"zero"``."""
    amount: float = 0.0


@dataclass
class Record:
    """What one system did with one job (wall-clock seconds)."""

    index: int
    workload: int
    visible: float
    """When the router or LeadClient had the task."""
    started: float
    finished: float
    collected: float
    """When the result reached the collector (the server, for ours)."""
    pid: int
    ok: bool = True


def spin(iterations: int) -> int:
    """Pure-Python CPU work."""
    x = 1
    for _ in range(iterations):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def calibrate_spin(seconds: float) -> int:
    """Iterations of ``spin`` that take about ``seconds`` on this machine now."""
    n = 200_000
    start = time.perf_counter()
    spin(n)
    took = time.perf_counter() - start
    return max(1, int(n * seconds / took))


def run_job(index: int, kind: str, amount: float) -> str:
    """Do one job's work and return the FED's answer."""
    if kind == "sleep":
        time.sleep(amount)
    elif kind == "cpu":
        spin(int(amount))
    return f"Msg {index} handled"


class BenchClient(Client):
    """Runs a job given as ``(index, kind, amount)``."""

    def handle_default(self, task: TaskIns) -> Any:
        index, kind, amount = task.content
        return run_job(index, kind, amount)
