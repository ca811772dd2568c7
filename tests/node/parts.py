"""Builders for the parts' unit tests: configs, tasks, and processes that are only records."""

from __future__ import annotations

from typing import Any

from flower_actors import NodeConfig, TaskIns
from flower_actors.node.workload import Phase, Process, Workload


def config(**options: Any) -> NodeConfig:
    return NodeConfig(app="tests.apps:Adder", **options)


def task(workload: Any = "w", content: Any = 1, **options: Any) -> TaskIns:
    return TaskIns.create(workload, content, **options)


def live(workload: Workload, incarnation: int = 7, pid: int = 4242, slot: int = 0) -> Workload:
    """Make ``workload`` look as if its process runs (address is any token)."""
    workload.process = Process(incarnation, slot, pid, f"address-{incarnation}")
    workload.phase = Phase.LIVE
    return workload
