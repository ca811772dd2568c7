"""Latency figures computed from results alone (their timing fields)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence

from .messages import TaskRes

__all__ = ["forward_gaps", "forward_latencies", "percentile", "result_latencies", "summary"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, nearest rank) of ``values``; ``None`` if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def forward_gaps(runs: Iterable[tuple[Hashable, float, float, float]]) -> list[float]:
    """Seconds from the moment each task could start to its handler starting.

    ``runs`` are ``(workload, visible, started, finished)``. A task can start
    once it is visible (pulled or routed) and its workload finished the task
    before it, so time spent queued behind that task is not counted.
    """
    by_workload: dict[Hashable, list[tuple[float, float, float]]] = defaultdict(list)
    for workload, visible, started, finished in runs:
        by_workload[workload].append((started, visible, finished))
    gaps = []
    for timeline in by_workload.values():
        timeline.sort()
        previous_end = 0.0
        for started, visible, finished in timeline:
            gaps.append(max(0.0, started - max(visible, previous_end)))
            previous_end = finished
    return gaps


def forward_latencies(results: Iterable[TaskRes]) -> list[float]:
    """``forward_gaps`` of results whose handler ran."""
    return forward_gaps(
        (r.workload_id, r.pulled_at, r.started_at, r.finished_at)
        for r in results
        if r.started_at is not None and r.pulled_at is not None and r.finished_at is not None
    )


def result_latencies(results: Iterable[TaskRes]) -> list[float]:
    """Seconds from each handler's end to the server storing the result."""
    return [r.stored_at - r.finished_at for r in results if r.stored_at is not None and r.finished_at is not None]


def summary(values_s: Sequence[float]) -> dict[str, float | None]:
    """``{"p50": ms, "p99": ms, "max": ms}`` of a list of seconds, rounded to microseconds (``None`` if empty)."""
    out: dict[str, float | None] = {}
    for name, q in (("p50", 50.0), ("p99", 99.0), ("max", 100.0)):
        value = percentile(values_s, q)
        out[name] = None if value is None else round(value * 1000.0, 3)
    return out
