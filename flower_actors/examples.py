"""Example apps: the FED's example client, and small ones for trying things out."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from .apps import Client, WorkloadContext
from .messages import TaskIns

__all__ = ["EchoClient", "FaultInjectionClient", "FedExampleClient", "HistoryClient"]


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
        self.seen: list[Any] = []

    def handle_default(self, task: TaskIns) -> list[Any]:
        self.seen.append(task.content)
        return list(self.seen)


class FaultInjectionClient(Client):
    """Does what the task's content says, to exercise fault handling.

    ``"ok"`` (answers ``{"pid": ...}``), ``"raise"``, ``"sysexit"``, ``"exit"``
    (``os._exit``), ``"kill"`` (SIGKILL itself), ``"segfault"`` (a crash in
    native code) or ``"hang"`` (never returns). With ``config["log"]`` set,
    appends the task id to that file on every handler call, to count runs.
    """

    def handle_default(self, task: TaskIns) -> dict[str, Any]:
        log = self.context.config.get("log")
        if log:
            with open(log, "a") as f:
                f.write(f"{task.task_id}\n")
        action = task.content
        if action == "raise":
            raise ValueError("asked to raise")
        if action == "sysexit":
            raise SystemExit(3)
        if action == "exit":
            os._exit(7)
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "segfault":
            import ctypes

            ctypes.string_at(0)
        if action == "hang":
            while True:
                time.sleep(1)
        return {"pid": os.getpid()}
