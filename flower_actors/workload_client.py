"""``WorkloadClient``: one actor, in its own process, per workload.

It loads the workload's app once, runs the handler for each ``TaskIns`` in
arrival order, sends the ``TaskRes`` straight to the Sender and then tells
the LeadClient the task is done. Nothing a handler does escapes: an
exception, an unknown message type or an unpicklable result becomes an
error result.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from typing import Any, Callable, Optional

from thespian.actors import ActorAddress

from .actor_base import SafeActor
from .apps import UnknownMessageType, WorkloadContext, load_app
from .control import StartWorkloadClient, TaskDone, WorkloadClientStarted
from .errors import AppLoadError, ErrorKind
from .messages import TaskError, TaskIns, TaskRes

__all__ = ["WorkloadClient"]

log = logging.getLogger(__name__)

# Results of these types always pickle; anything else is checked before sending
# because Thespian drops a message it cannot pickle with only a log line.
_ALWAYS_PICKLABLE = (str, bytes, int, float, bool, type(None))


class WorkloadClient(SafeActor):
    """Runs one workload's handler, one task at a time, in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self.start: Optional[StartWorkloadClient] = None
        self.handler: Optional[Callable[[TaskIns], Any]] = None
        self.app_error: Optional[TaskError] = None
        self.pid = os.getpid()

    def receive_StartWorkloadClient(self, message: StartWorkloadClient, sender: ActorAddress) -> None:
        self.start = message
        context = WorkloadContext(message.workload_id, message.node_id, message.app.config)
        try:
            self.handler = load_app(message.app, context)
        except AppLoadError as exc:
            self.app_error = TaskError(ErrorKind.APP_LOAD_ERROR, str(exc))
            log.error("workload %r: %s", message.workload_id, exc)
        self.send(
            message.lead,
            WorkloadClientStarted(message.workload_id, self.pid, str(self.app_error) if self.app_error else None),
        )

    def receive_TaskIns(self, task: TaskIns, sender: ActorAddress) -> None:
        start = self.start
        if start is None:  # cannot happen: the LeadClient sends StartWorkloadClient first
            log.error("WorkloadClient got task %s before it was started", task.task_id)
            return
        started_at = time.time()
        content, error = self._run(task)
        finished_at = time.time()
        result = TaskRes.answer(
            task,
            content=content,
            error=error,
            started_at=started_at if self.handler is not None else None,
            finished_at=finished_at,
            handler_pid=self.pid,
        )
        self.send(start.sender, result)
        self.send(start.lead, TaskDone(task.workload_id, task.task_id, error is None, result.started_at, finished_at))

    def _run(self, task: TaskIns) -> "tuple[Any, Optional[TaskError]]":
        if self.handler is None:
            return None, self.app_error
        try:
            content = self.handler(task)
        except UnknownMessageType as exc:
            return None, TaskError(ErrorKind.UNKNOWN_MESSAGE_TYPE, str(exc))
        except (Exception, SystemExit) as exc:
            return None, TaskError.from_exception(ErrorKind.HANDLER_ERROR, exc)
        if not isinstance(content, _ALWAYS_PICKLABLE):
            try:
                pickle.dumps(content, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                return None, TaskError(
                    ErrorKind.UNPICKLABLE_RESULT,
                    f"the handler returned a {type(content).__name__} that cannot be pickled: {exc}",
                    exception_type=type(exc).__name__,
                )
        return content, None
