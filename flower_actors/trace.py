"""The FED example as a reproducible trace, and its lower bound (DESIGN.md).

Task ``i`` is produced at ``i * gap`` for workload ``rng.randint(0, clients - 1)``
(``rng = random.Random(seed)``, drawn in order) with content ``f"Msg {i}"``;
its handler sleeps ``work`` seconds and returns ``content + " handled"``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .config import NodeConfig
from .driver import Driver
from .errors import ConfigError
from .messages import TaskIns, TaskRes

__all__ = ["ALIGN_MARGIN", "Replay", "TraceItem", "TraceSpec", "fed_trace", "lower_bound", "replay", "trace_start"]

ALIGN_MARGIN = 0.025
"""Seconds between a trace's start and the node's next pull tick (periodic mode)."""


@dataclass(frozen=True)
class TraceSpec:
    """Parameters of the FED example trace (defaults as in the FED)."""

    clients: int = 100
    tasks: int = 400
    gap: float = 0.04
    work: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.clients < 1 or self.tasks < 1:
            raise ConfigError("clients and tasks must be at least 1")
        if self.gap < 0 or self.work < 0:
            raise ConfigError("gap and work must not be negative")


@dataclass(frozen=True)
class TraceItem:
    """One task of the trace: when it is produced, for which workload, with what content."""

    index: int
    at: float
    workload_id: int
    content: str


def fed_trace(spec: TraceSpec) -> list[TraceItem]:
    """The trace's tasks in production order."""
    rng = random.Random(spec.seed)
    return [TraceItem(i, i * spec.gap, rng.randint(0, spec.clients - 1), f"Msg {i}") for i in range(spec.tasks)]


def lower_bound(spec: TraceSpec, poll: float | None) -> float:
    """Makespan if routing were free and workloads fully parallel.

    With polling (``poll`` seconds) a task becomes visible at the next
    multiple of ``poll``; with ``None`` (long-poll) at once.
    """
    finish: dict[int, float] = {}
    for item in fed_trace(spec):
        visible = item.at
        if poll:
            visible = math.ceil(round(item.at / poll, 9)) * poll
        start = max(visible, finish.get(item.workload_id, 0.0))
        finish[item.workload_id] = start + spec.work
    return max(finish.values(), default=0.0)


def trace_start(next_pull_at: float, config: NodeConfig) -> float:
    """When to produce a trace's first task on a node whose next pull tick is ``next_pull_at``.

    At once with long-poll. In periodic mode ``ALIGN_MARGIN`` before a tick at
    least 50 ms away, as the lower bound assumes: tasks become visible at
    multiples of the poll interval from the trace's start.
    """
    now = time.time()
    if config.long_poll:
        return now
    tick = next_pull_at
    while tick - ALIGN_MARGIN < now + 0.05:
        tick += config.poll_interval
    return tick - ALIGN_MARGIN


@dataclass
class Replay:
    """What a driver saw while replaying a timed list of tasks."""

    results: list[TaskRes] = field(default_factory=list)
    received_at: dict[str, float] = field(default_factory=dict)
    """Result's ``ins_id`` -> when the driver received it."""
    first_submit: float | None = None
    last_received: float | None = None

    @property
    def makespan(self) -> float | None:
        """First task submitted to last result received, in seconds."""
        if self.first_submit is None or self.last_received is None:
            return None
        return self.last_received - self.first_submit

    def add(self, results: Sequence[TaskRes]) -> None:
        now = time.time()
        for r in results:
            self.received_at[r.ins_id] = now
        self.results.extend(results)
        if results:
            self.last_received = now


def replay(
    driver: Driver,
    schedule: Sequence[tuple[float, TaskIns]],
    t0: float,
    timeout: float,
    on_progress: Callable[[int, Replay], None] | None = None,
) -> Replay:
    """Submit each task at ``t0 + at`` (wall clock), collecting results while waiting; then wait for the rest.

    Tasks due at the same moment go in one submission. Results are collected
    with long-polls that end just before the next submission is due.
    """
    out = Replay()
    i = 0
    while i < len(schedule):
        due = t0 + schedule[i][0]
        while True:
            remaining = due - time.time()
            if remaining <= 0:
                break
            if remaining > 0.01:
                out.add(driver.collect(wait=min(remaining - 0.006, 0.5)))
            else:
                time.sleep(remaining)
        batch = []
        while i < len(schedule) and t0 + schedule[i][0] <= time.time():
            batch.append(schedule[i][1])
            i += 1
        out.first_submit = out.first_submit or time.time()
        driver.submit(batch)
        if on_progress:
            on_progress(i, out)
    deadline = time.time() + timeout
    while len(out.results) < len(schedule) and time.time() < deadline:
        out.add(driver.collect(wait=0.5))
        if on_progress:
            on_progress(len(schedule), out)
    return out
