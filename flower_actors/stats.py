"""Latency figures computed from results alone (their timing fields)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Dict, Iterable, List, Optional, Sequence

from .messages import TaskRes, WorkloadId

__all__ = ["forward_latencies", "percentile", "result_latencies", "summary"]


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """The ``q``-th percentile (0-100, nearest rank) of ``values``; ``None`` if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def forward_latencies(results: Iterable[TaskRes]) -> List[float]:
    """Seconds from the moment each task could start to its handler starting.

    A task can start once it was pulled and its workload finished the task
    before it; results whose handler never ran are skipped.
    """
    by_workload: Dict[WorkloadId, List[TaskRes]] = defaultdict(list)
    for r in results:
        if r.started_at is not None and r.pulled_at is not None and r.finished_at is not None:
            by_workload[r.workload_id].append(r)
    latencies = []
    for runs in by_workload.values():
        runs.sort(key=lambda r: r.started_at)  # type: ignore[arg-type, return-value]
        previous_end = 0.0
        for r in runs:
            assert r.started_at is not None and r.pulled_at is not None and r.finished_at is not None
            could_start = max(r.pulled_at, previous_end)
            latencies.append(max(0.0, r.started_at - could_start))
            previous_end = r.finished_at
    return latencies


def result_latencies(results: Iterable[TaskRes]) -> List[float]:
    """Seconds from each handler's end to the server storing the result."""
    return [r.stored_at - r.finished_at for r in results if r.stored_at is not None and r.finished_at is not None]


def summary(values_s: Sequence[float]) -> Dict[str, Optional[float]]:
    """``{"p50": ms, "p99": ms}`` of a list of seconds, rounded to microseconds."""
    out: Dict[str, Optional[float]] = {}
    for name, q in (("p50", 50.0), ("p99", 99.0)):
        value = percentile(values_s, q)
        out[name] = None if value is None else round(value * 1000.0, 3)
    return out
