"""Apps used by the tests; importable as ``tests.apps:Name`` inside WorkloadClients."""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List

from flower_actors import Client, TaskIns, WorkloadContext
from flower_actors.examples import FaultInjectionClient


class Sleeper(Client):
    """Sleeps ``task.content`` seconds (a number) and reports when and where it ran."""

    def handle_default(self, task: TaskIns) -> Dict[str, Any]:
        start = time.time()
        time.sleep(float(task.content))
        return {"pid": os.getpid(), "start": start, "end": time.time()}


class Recorder(Client):
    """Remembers every content in order (the workload's state) and returns the history."""

    def __init__(self, context: WorkloadContext) -> None:
        super().__init__(context)
        self.history: List[Any] = []

    def handle_default(self, task: TaskIns) -> Dict[str, Any]:
        self.history.append(task.content)
        return {"pid": os.getpid(), "workload": self.context.workload_id, "history": list(self.history)}

    def handle_boom(self, task: TaskIns) -> None:
        raise RuntimeError(f"boom on {task.content}")

    def handle_exit(self, task: TaskIns) -> None:
        os._exit(3)

    def handle_unpicklable(self, task: TaskIns) -> Any:
        return lambda: None


def plain_function(task: TaskIns) -> str:
    """A stateless app given as a function."""
    return f"fn:{task.content}"


class BrokenInit(Client):
    def __init__(self, context: WorkloadContext) -> None:
        raise ValueError("cannot start")


Faulty = FaultInjectionClient
