"""Example apps: the FED's example client, and small ones for trying things out."""

from __future__ import annotations

import time
from typing import Any, List

from .apps import Client, WorkloadContext
from .messages import TaskIns

__all__ = ["EchoClient", "FedExampleClient", "HistoryClient"]


class FedExampleClient(Client):
    """The FED's ``example_handler``: sleeps ``config["work"]`` seconds (default 2) and appends " handled"."""

    def __init__(self, context: WorkloadContext) -> None:
        super().__init__(context)
        self.work = float(context.config.get("work", 2.0))

    def handle_default(self, task: TaskIns) -> str:
        time.sleep(self.work)
        return f"{task.content} handled"


class EchoClient(Client):
    """Returns the task's content unchanged, at once."""

    def handle_default(self, task: TaskIns) -> Any:
        return task.content


class HistoryClient(Client):
    """Keeps every content it saw (the workload's state) and returns the list so far."""

    def __init__(self, context: WorkloadContext) -> None:
        super().__init__(context)
        self.seen: List[Any] = []

    def handle_default(self, task: TaskIns) -> List[Any]:
        self.seen.append(task.content)
        return list(self.seen)
