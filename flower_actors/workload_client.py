"""``WorkloadClient``: one actor, in its own process, per workload.

It reports its pid, loads the workload's app once, runs the handler for
each ``TaskIns`` in arrival order, sends the ``TaskRes`` straight to the
Sender and then tells the LeadClient the task is done. Nothing a handler
does escapes: an exception (even ``SystemExit``), an unknown message type,
content that cannot be unpickled or a result that cannot be pickled becomes
an error result, and the handler never runs twice.
"""

from __future__ import annotations

import faulthandler
import importlib
import logging
import os
import signal
import time
from collections import deque
from datetime import timedelta
from typing import Any, Callable, Deque, Optional, Tuple

from thespian.actors import ActorAddress, WakeupMessage

from . import task_board
from .actor_base import SafeActor
from .apps import UnknownMessageType, WorkloadContext, load_app
from .control import PrewarmWorkloadClient, StartWorkloadClient, TaskDone, WorkloadClientStarted
from .errors import AppLoadError, ErrorKind
from .messages import BadContent, TaskError, TaskIns, TaskRes, dump_content

__all__ = ["WorkloadClient"]

log = logging.getLogger(__name__)

MAX_SEND_WAIT = 0.02
"""Longest a task waits for this process's earlier messages to be delivered before it starts anyway
(a congested Sender can take longer to acknowledge; the LeadClient then still answers every task)."""

_SENDS_DONE = "sends-done"


def _sends_pending(actor: Any) -> bool:
    """Whether this actor's Thespian transport still has messages not acknowledged (Thespian 4 internals)."""
    transport = getattr(getattr(actor, "_myRef", None), "transport", None)
    if transport is None:
        return False
    return bool(getattr(transport, "_aTB_numPendingTransmits", 0) or getattr(transport, "_aTB_queuedPendingTransmits", ()))


def _make_faults_fatal() -> None:
    """Let a crash in native code kill this process.

    Thespian installs a Python handler for every catchable signal in each
    actor process. For SIGSEGV, SIGBUS, SIGFPE and SIGILL that handler
    returns, the faulting instruction runs again, and the process spins
    forever instead of dying. ``faulthandler`` prints the Python stack to
    stderr and then lets the signal kill the process, so the LeadClient sees
    the death and answers the task.
    """
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    faulthandler.enable(all_threads=True)


class WorkloadClient(SafeActor):
    """Runs one workload's handler, one task at a time, in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self.start: Optional[StartWorkloadClient] = None
        self.handler: Optional[Callable[[TaskIns], Any]] = None
        self.app_error: Optional[TaskError] = None
        self.pid = os.getpid()
        self.prewarmed = False
        self.seq = 0  # tasks received; the LeadClient counts the same way
        self.waiting: Deque[TaskIns] = deque()
        self.waiting_since = time.monotonic()  # when the last task finished (the send wait counts from it)
        self.deferred = False  # a wakeup will try the next task again

    def receive_PrewarmWorkloadClient(self, message: PrewarmWorkloadClient, sender: ActorAddress) -> None:
        self.prewarmed = True
        _make_faults_fatal()
        self.send(message.lead, WorkloadClientStarted(None, self.pid, message.incarnation))
        if message.module:
            try:
                importlib.import_module(message.module)
            except BaseException:  # reported when the app is really loaded, as an AppLoadError result
                log.debug("pre-import of %s failed", message.module, exc_info=True)

    def receive_StartWorkloadClient(self, message: StartWorkloadClient, sender: ActorAddress) -> None:
        self.start = message
        _make_faults_fatal()
        # Report the pid before importing user code: an import that hangs can then still be killed.
        if not self.prewarmed:
            self.send(message.lead, WorkloadClientStarted(message.workload_id, self.pid, message.incarnation))
        context = WorkloadContext(message.workload_id, message.node_id, message.app.config)
        try:
            self.handler = load_app(message.app, context)
        except AppLoadError as exc:
            self.app_error = TaskError(ErrorKind.APP_LOAD_ERROR, str(exc))
            log.error("workload %r: %s", message.workload_id, exc)
        except BaseException as exc:  # an app that calls sys.exit() or worse while loading
            self.app_error = TaskError.from_exception(ErrorKind.APP_LOAD_ERROR, exc)

    def receive_TaskIns(self, task: TaskIns, sender: ActorAddress) -> None:
        self.waiting.append(task)
        self._next()

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        if message.payload == _SENDS_DONE:
            self.deferred = False
            self._next()

    def _next(self) -> None:
        """Start the next task, but not while this process still holds messages it has not delivered.

        Thespian transmits only between handler calls and waits for each
        message's acknowledgement before sending the next on a connection. A
        result still queued here when a handler starts would die with the
        process if that handler hangs or crashes, so the task waits (through
        zero-delay wakeups, which let the transport run) until every send is
        acknowledged, for at most ``MAX_SEND_WAIT`` seconds.
        """
        if self.deferred or not self.waiting:
            return
        if _sends_pending(self) and time.monotonic() - self.waiting_since < MAX_SEND_WAIT:
            self.deferred = True
            self.wakeupAfter(timedelta(0), _SENDS_DONE)
            return
        self._run_task(self.waiting.popleft())
        self.waiting_since = time.monotonic()
        if self.waiting:
            self._next()

    def _run_task(self, task: TaskIns) -> None:
        start = self.start
        if start is None:  # cannot happen: the LeadClient sends StartWorkloadClient first
            log.error("WorkloadClient got task %s before it was started", task.task_id)
            return
        self.seq += 1
        board = task_board.CURRENT
        if board is not None:
            board.started(start.board_slot, self.seq)
        started_at = time.time()
        payload, error, ran = self._run(task)
        finished_at = time.time()
        result = TaskRes.answer(
            task,
            payload=payload,
            error=error,
            started_at=started_at if ran else None,
            finished_at=finished_at,
            handler_pid=self.pid,
        )
        self.send(start.sender, result)
        self.send(start.lead, TaskDone(task.workload_id, task.task_id, error is None))
        if board is not None:
            board.finished(start.board_slot, self.seq)

    def _run(self, task: TaskIns) -> Tuple[Optional[bytes], Optional[TaskError], bool]:
        """Run the handler; return (result payload, error, whether the handler ran)."""
        if self.handler is None:
            return None, self.app_error, False
        try:
            task.content  # unpickle before the handler runs, to tell bad input from a handler error
        except BadContent as exc:
            return None, TaskError(ErrorKind.BAD_TASK, str(exc)), False
        try:
            content = self.handler(task)
        except UnknownMessageType as exc:
            return None, TaskError(ErrorKind.UNKNOWN_MESSAGE_TYPE, str(exc)), True
        except BaseException as exc:  # SystemExit, KeyboardInterrupt too: never let Thespian rerun the handler
            return None, TaskError.from_exception(ErrorKind.HANDLER_ERROR, exc), True
        try:
            return dump_content(content), None, True
        except BadContent as exc:
            return None, TaskError(ErrorKind.UNPICKLABLE_RESULT, f"the handler's result: {exc}"), True
