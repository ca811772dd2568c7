"""The FED example as a reproducible trace, and its lower bound (DESIGN.md).

Task ``i`` is produced at ``i * gap`` for workload ``rng.randint(0, clients - 1)``
(``rng = random.Random(seed)``, drawn in order) with content ``f"Msg {i}"``;
its handler sleeps ``work`` seconds and returns ``content + " handled"``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Dict, List, Optional

from .errors import ConfigError

__all__ = ["TraceItem", "TraceSpec", "fed_trace", "lower_bound"]


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


def fed_trace(spec: TraceSpec) -> List[TraceItem]:
    """The trace's tasks in production order."""
    rng = random.Random(spec.seed)
    return [TraceItem(i, i * spec.gap, rng.randint(0, spec.clients - 1), f"Msg {i}") for i in range(spec.tasks)]


def lower_bound(spec: TraceSpec, poll: Optional[float]) -> float:
    """Makespan if routing were free and workloads fully parallel.

    With polling (``poll`` seconds) a task becomes visible at the next
    multiple of ``poll``; with ``None`` (long-poll) at once.
    """
    finish: Dict[int, float] = {}
    for item in fed_trace(spec):
        visible = item.at
        if poll:
            visible = math.ceil(round(item.at / poll, 9)) * poll
        start = max(visible, finish.get(item.workload_id, 0.0))
        finish[item.workload_id] = start + spec.work
    return max(finish.values())
