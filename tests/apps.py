"""Apps used by the tests; importable as ``tests.apps:Name`` inside WorkloadClients."""

from __future__ import annotations

import os
import time
from typing import Any

from flower_actors import Client, TaskIns, WorkloadContext
from flower_actors.examples import FaultInjectionClient


class Sleeper(Client):
    """Sleeps ``task.content`` seconds (a number) and reports when and where it ran."""

    def handle_default(self, task: TaskIns) -> dict[str, Any]:
        start = time.time()
        time.sleep(float(task.content))
        return {"pid": os.getpid(), "start": start, "end": time.time()}


class Recorder(Client):
    """Remembers every content in order (the workload's state) and returns the history."""

    def __init__(self, context: WorkloadContext) -> None:
        super().__init__(context)
        self.history: list[Any] = []

    def handle_default(self, task: TaskIns) -> dict[str, Any]:
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


class UnprintableError(Exception):
    """An exception whose ``__str__`` and ``__repr__`` raise."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ is broken")


class ExitOnPickle:
    """A value whose pickling raises ``SystemExit``."""

    def __reduce__(self) -> Any:
        raise SystemExit(4)


class Adder(Client):
    """Keeps a running total (the workload's state); ``handle_add`` returns it."""

    def __init__(self, context: WorkloadContext) -> None:
        super().__init__(context)
        self.total = 0

    def handle_add(self, task: TaskIns) -> int:
        self.total += int(task.content)
        return self.total

    def handle_slow_add(self, task: TaskIns) -> int:
        time.sleep(0.5)
        return self.handle_add(task)

    def handle_broken_str(self, task: TaskIns) -> None:
        raise UnprintableError()

    def handle_exit_on_pickle(self, task: TaskIns) -> Any:
        return ExitOnPickle()

    def handle_sleep(self, task: TaskIns) -> int:
        time.sleep(float(task.content))
        return self.total

    def handle_exit(self, task: TaskIns) -> None:
        os._exit(3)


module_level_lambda = lambda task: task.content
"""A lambda at module level: refused as an app (no import can find it by its ``__qualname__``)."""


def big_result(task: TaskIns) -> bytes:
    """Returns ``task.content`` bytes."""
    return b"x" * int(task.content)


def _square_into(conn: Any, value: int) -> None:
    conn.send((os.getpid(), value * value))
    conn.close()


def uses_multiprocessing(task: TaskIns) -> dict[str, Any]:
    """Squares ``task.content`` in a ``multiprocessing`` child of its WorkloadClient; reports what the child saw."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    parent_end, child_end = context.Pipe()
    child = context.Process(target=_square_into, args=(child_end, int(task.content)))
    child.start()
    child_pid, square = parent_end.recv()
    child.join(10)
    return {
        "square": square,
        "child_pid": child_pid,
        "exitcode": child.exitcode,
        "active_children": len(multiprocessing.active_children()),
        "pid": os.getpid(),
    }
