"""The Spawner runs a WorkloadClient's task path once before its first fork, so every child inherits it run.

CPython 3.11 rewrites a function's bytecode into its specializing form
after a few calls, and then specializes each instruction for the types it
meets; the type attribute cache fills the same way. Each forked process did
this afresh for the task path (``RunTasks``, a slice, a result, its spill
record), writing the code objects it ran, so their pages were copied in
every WorkloadClient. Run here first, with a handler that does nothing and
sends that are only pickled, the children start with that work done and
those pages shared.

Nothing of it leaves the Spawner: no message is sent, the task board is not
touched, the spill record goes to a temporary file that is removed.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from typing import Any

from ..apps import AppSpec, Client, WorkloadContext
from ..messages import TaskIns, describe_exception
from . import task_board
from .spill import SpillWriter
from .wire import RunTasks, StartWorkloadClient
from .workload_client import WorkloadClient

__all__ = ["rehearse"]

log = logging.getLogger(__name__)

ROUNDS = 16
"""``RunTasks`` messages rehearsed: above the calls after which CPython specializes a function (8 in 3.11)."""
TASKS = 8
"""Tasks in each."""


class _Quiet(Client):
    def handle_default(self, task: TaskIns) -> None:
        return None


class _Rehearsal(WorkloadClient):
    """A WorkloadClient outside any actor system: what it sends is pickled and dropped."""

    PROCESS_NAME = ""  # the Spawner keeps its name in ps and in its log records

    def send(self, target: Any, message: Any) -> None:
        pickle.loads(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def wakeupAfter(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _transport_busy(self) -> bool:
        return False


def rehearse(rounds: int = ROUNDS, tasks: int = TASKS) -> None:
    """Run ``rounds`` ``RunTasks`` of ``tasks`` no-op tasks through a ``WorkloadClient``'s methods, here.

    Never raises: it only saves the children work.
    """
    board, task_board.CURRENT = task_board.CURRENT, None
    fd, path = tempfile.mkstemp(prefix="flower-actors-rehearsal-")
    os.close(fd)
    actor = _Rehearsal()
    try:
        actor.start = StartWorkloadClient("rehearsal", 0, AppSpec(f"{__name__}:_Quiet"), None, None, spill_path=path)
        actor.spill = SpillWriter(path)
        actor.handler = _Quiet(WorkloadContext("rehearsal", 0, {})).handle
        for _ in range(rounds):
            message = RunTasks(tuple(TaskIns.create("rehearsal", None) for _ in range(tasks)), report=False)
            actor.receive_RunTasks(pickle.loads(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)), None)
            while actor.waiting:
                actor.continuing = False
                actor._slice()
            actor.in_transit.clear()
    except BaseException as exc:
        log.debug("rehearsing the task path failed (children do it themselves): %s", describe_exception(exc))
    finally:
        task_board.CURRENT = board
        if actor.spill is not None:
            actor.spill.close()
        try:
            os.unlink(path)
        except OSError:
            pass
