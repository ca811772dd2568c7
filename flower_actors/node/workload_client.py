"""``WorkloadClient``: one actor, in its own process, per workload.

It reports its pid, loads the workload's app once, runs the handler for
each ``TaskIns`` in arrival order, sends the ``TaskRes`` straight to the
Sender and then tells the LeadClient which tasks are done. Short tasks run
back to back and their results travel together (``SLICE``). Nothing a handler
does escapes: an exception (even ``SystemExit``), an unknown message type,
content that cannot be unpickled or a result that cannot be pickled becomes
an error result, and the handler never runs twice.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from thespian.actors import ActorAddress, WakeupMessage

from ..apps import WorkloadContext, load_app
from ..errors import AppLoadError, ErrorKind, UnknownMessageType
from ..messages import BadContent, TaskError, TaskIns, TaskRes, describe_exception, dump_content, safe_text, type_name
from ..runtime.actor_base import TRANSPORT_PAUSE, SafeActor
from ..runtime.forked_start import make_faults_fatal
from ..runtime.logs import name_process
from ..runtime.recent_ids import RecentIds
from ..runtime.thespian_compat import pending_transmits
from . import task_board
from .spill import SpillWriter
from .wire import (
    LONG_HANDLER,
    AppImported,
    PrewarmWorkloadClient,
    ReportTasks,
    RunTasks,
    StartWorkloadClient,
    TaskResGroup,
    TasksDone,
    WorkloadClientStarted,
)

__all__ = ["WorkloadClient"]

log = logging.getLogger(__name__)

SLICE = 0.002
"""Seconds a WorkloadClient runs tasks back to back before their results leave together; a task that
runs longer ends its slice, so its result leaves at once (results of short tasks travel in groups)."""

DRAIN_LIMIT = 0.1
"""Longest a WorkloadClient waits for earlier results to leave its process before starting a task that
may run long (the FED's goal 4: a result goes back as soon as it exists, not after the next handler)."""
SLICE_BYTES = 16 * 1024 * 1024
"""Result bytes after which a slice ends, so one message of results stays far below the transport's frame limit."""
RECEIVED_WINDOW = 4096
"""How many received task ids a WorkloadClient remembers to drop a resent copy (far above ``routing.WINDOW``)."""
MAX_MESSAGE_TYPES = 1024
"""Message types whose last duration a WorkloadClient remembers (to tell short tasks from long ones)."""

_CONTINUE = object()
"""Timer payload: run the next slice."""


class WorkloadClient(SafeActor):
    """Runs one workload's handler, one task at a time, in arrival order."""

    PROCESS_NAME = ""  # its first message names it, with its workload (or as warm)

    def __init__(self) -> None:
        super().__init__()
        self.start: StartWorkloadClient | None = None
        self.handler: Callable[[TaskIns], Any] | None = None
        self.app_error: TaskError | None = None
        self.pid = os.getpid()
        self.prewarmed = False
        self.seq = 0  # tasks started; the LeadClient numbers the tasks it sends the same way
        self.waiting: deque[TaskIns] = deque()
        self.continuing = False  # a wakeup will run the next slice
        self.unsent: list[TaskRes] = []  # results of the slice running now
        self.in_transit: list[TaskRes] = []  # results handed to Thespian, maybe not yet acknowledged
        self.spilled = 0  # how many of in_transit + unsent the spill file holds
        self.spill: SpillWriter | None = None
        self.short_types: dict[str, bool] = {}  # message type -> its last run was shorter than SLICE
        self.draining_since: float | None = None  # monotonic: waiting for results to leave since
        self.received = RecentIds(RECEIVED_WINDOW)  # ids of the tasks received, to drop a resent copy
        self.report_wanted = False  # the LeadClient asked for TasksDone after each slice until it holds no task
        self.imported = ""  # the app module it imported itself, until its next report says so
        self.preimported = ""  # the module it imported ahead, as a warm process

    def receive_PrewarmWorkloadClient(self, message: PrewarmWorkloadClient, sender: ActorAddress) -> None:
        self.prewarmed = True
        name_process("WorkloadClient (warm)")
        make_faults_fatal()  # done already if forked from the Spawner
        self.send(message.lead, WorkloadClientStarted(None, self.pid, message.incarnation))
        if message.module:
            try:
                if message.module not in sys.modules:
                    importlib.import_module(message.module)
                    self.preimported = message.module
                    if message.share_import:  # the Spawner imports it before the next processes are forked
                        self.send(message.lead, AppImported(message.module))
            except BaseException:  # reported when the app is really loaded, as an AppLoadError result
                log.debug("pre-import of %s failed", message.module, exc_info=True)

    def receive_StartWorkloadClient(self, message: StartWorkloadClient, sender: ActorAddress) -> None:
        self.start = message
        self.report_wanted = message.report
        name_process(f"WorkloadClient w={message.workload_id}")
        self.spill = SpillWriter(message.spill_path) if message.spill_path else None
        make_faults_fatal()  # done already if forked from the Spawner
        self.waiting.extend(self._new(message.tasks))
        if not (self.prewarmed or message.announced):  # its address (the LeadClient has its pid from the Spawner:
            # an import that hangs is killed at the first task's deadline though this report leaves only after it)
            self.send(message.lead, WorkloadClientStarted(message.workload_id, self.pid, message.incarnation))
        self._load_app(message)
        self._slice()
        # What it holds now (app, transport, the Spawner's leftovers) lives as long as the process: no collection
        # visits it again, and the next one waits for 700 new objects (its first came in its first burst of tasks).
        gc.freeze()

    def _load_app(self, message: StartWorkloadClient) -> None:
        board = task_board.CURRENT
        if board is not None:
            board.loading(message.board_slot)  # the first task's deadline covers a load that hangs
        context = WorkloadContext(message.workload_id, message.node_id, message.app.config)
        fresh = message.app.module not in sys.modules or message.app.module == self.preimported
        try:
            self.handler = load_app(message.app, context)
            if fresh and message.share_import:  # it imports cleanly: the Spawner may import it for later processes
                self.imported = message.app.module
        except AppLoadError as exc:
            self.app_error = TaskError(ErrorKind.APP_LOAD_ERROR, safe_text(exc))
            log.error("workload %r: %s", message.workload_id, self.app_error.message)
        except BaseException as exc:  # an app that calls sys.exit() or worse while loading
            self.app_error = TaskError.from_exception(ErrorKind.APP_LOAD_ERROR, exc)

    def receive_RunTasks(self, message: RunTasks, sender: ActorAddress) -> None:
        self.report_wanted = self.report_wanted or message.report
        self.waiting.extend(self._new(message.tasks))
        self._slice()

    def receive_ReportTasks(self, message: ReportTasks, sender: ActorAddress) -> None:
        self.report_wanted = True
        if self.start is not None and not self.waiting:  # it holds no task: say so now
            self._report(self.start, ())

    def _new(self, tasks: tuple[TaskIns, ...]) -> list[TaskIns]:
        """The tasks not received before: the LeadClient sends again what seems stuck on the way."""
        fresh = [task for task in tasks if self.received.add(task.task_id)]
        if len(fresh) < len(tasks):
            log.info("dropped %d task(s) received twice (sent again by the LeadClient)", len(tasks) - len(fresh))
        return fresh

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        if message.payload is _CONTINUE:
            self.continuing = False
            self._slice()

    def _slice(self) -> None:
        """Run waiting tasks back to back for up to ``SLICE`` seconds, then send their results together.

        Between slices a short pause lets Thespian's transport run, so results
        leave while later tasks wait; their order is kept. A task that may run
        long (its message type has not yet run shorter than ``SLICE``) starts a
        slice of its own, and only once the results before it have left the
        process (at most ``DRAIN_LIMIT``): Thespian transmits only between
        handler calls, so a result still inside would wait for that handler.
        """
        start = self.start
        if self.continuing or not self.waiting:
            return
        if start is None:  # cannot happen: the LeadClient sends StartWorkloadClient first
            log.error("WorkloadClient got %d task(s) before it was started", len(self.waiting))
            return
        if self._hold_for_transport():
            self._continue_later()
            return
        began = time.monotonic()
        errors = 0
        size = 0
        while self.waiting:
            if self.unsent and not self._known_short(self.waiting[0]):
                break  # it may run long: the results so far leave first
            self._secure_results()
            result = self._answer(self.waiting.popleft(), start)
            self.unsent.append(result)
            errors += result.error is not None
            size += len(result.payload or b"")
            if time.monotonic() - began >= SLICE or size >= SLICE_BYTES:
                break
        results, self.unsent = self.unsent, []
        self.send(start.sender, results[0] if len(results) == 1 else TaskResGroup(tuple(results)))
        if self.report_wanted or self.imported or start.board_slot < 0 or time.monotonic() - began >= LONG_HANDLER:
            self._report(start, tuple(r.ins_id for r in results))  # else the LeadClient reads its task board
        self.in_transit.extend(results)
        if self.waiting:
            self._continue_later()

    def _report(self, start: StartWorkloadClient, done: tuple[str, ...]) -> None:
        """Tell the LeadClient these tasks finished; asked reports go on while it holds tasks."""
        self.send(start.lead, TasksDone(start.workload_id, start.incarnation, done, self.imported))
        self.imported = ""
        if not self.waiting:
            self.report_wanted = False

    def _continue_later(self) -> None:
        self.continuing = True
        self.wakeupAfter(TRANSPORT_PAUSE, _CONTINUE)

    def _known_short(self, task: TaskIns) -> bool:
        return self.short_types.get(task.message_type, False)

    def _hold_for_transport(self) -> bool:
        """Whether the next task must wait for earlier results to leave (see ``_slice``)."""
        if self._known_short(self.waiting[0]) or not self.in_transit or not self._transport_busy():
            self.draining_since = None
            return False
        now = time.monotonic()
        if self.draining_since is None:
            self.draining_since = now
        if now - self.draining_since < DRAIN_LIMIT:
            return True
        self.draining_since = None  # the spill file keeps them safe; latency is all that is lost
        return False

    def _transport_busy(self) -> bool:
        """Whether Thespian holds a send of ours not yet acknowledged."""
        return pending_transmits(self)

    def _secure_results(self) -> None:
        """Before a handler starts: every earlier result is acknowledged or in the spill file.

        A result still inside this process would die with it if the next
        handler crashes or hangs until it is killed; the LeadClient reads the
        spill file of a process that ended (see ``spill``).
        """
        if self.in_transit and not self.unsent and not self._transport_busy():
            self.in_transit.clear()
            self.spilled = 0
            if self.spill is not None:
                self.spill.clear()
        at_risk = len(self.in_transit) + len(self.unsent)
        if self.spill is not None and at_risk > self.spilled:
            self.spill.write((self.in_transit + self.unsent)[self.spilled :])
            self.spilled = at_risk

    def _answer(self, task: TaskIns, start: StartWorkloadClient) -> TaskRes:
        """The one result of ``task``, whatever happens while it is made."""
        try:
            return self._run_task(task, start)
        except BaseException as exc:  # a bug here, or user code that escaped every guard: still one answer
            log.error(
                "workload %r: answering task %s failed: %s", start.workload_id, task.task_id, describe_exception(exc)
            )
            error = TaskError(
                ErrorKind.HANDLER_ERROR,
                f"the task could not be answered: {describe_exception(exc)}",
                exception_type=type_name(exc),
            )
            return TaskRes.answer(task, error=error, handler_pid=self.pid)

    def _run_task(self, task: TaskIns, start: StartWorkloadClient) -> TaskRes:
        self.seq += 1
        board = task_board.CURRENT
        if board is not None:
            board.started(start.board_slot, self.seq)
        try:
            started_at = time.time()
            began = time.monotonic()
            payload, error, ran = self._run(task)
            if ran:
                self._learn_duration(task.message_type, time.monotonic() - began)
            return TaskRes.answer(
                task,
                payload=payload,
                error=error,
                started_at=started_at if ran else None,
                finished_at=time.time(),
                handler_pid=self.pid,
            )
        finally:
            if board is not None:
                board.finished(start.board_slot, self.seq)

    def _learn_duration(self, message_type: str, seconds: float) -> None:
        if len(self.short_types) >= MAX_MESSAGE_TYPES and message_type not in self.short_types:
            self.short_types.clear()
        self.short_types[message_type] = seconds < SLICE

    def _run(self, task: TaskIns) -> tuple[bytes | None, TaskError | None, bool]:
        """Run the handler; return (result payload, error, whether the handler ran)."""
        if self.handler is None:
            return None, self.app_error, False
        try:
            _ = task.content  # unpickle before the handler runs, to tell bad input from a handler error
        except BadContent as exc:
            return None, TaskError(ErrorKind.BAD_TASK, safe_text(exc)), False
        try:
            content = self.handler(task)
        except UnknownMessageType as exc:
            return None, TaskError(ErrorKind.UNKNOWN_MESSAGE_TYPE, safe_text(exc)), True
        except BaseException as exc:  # SystemExit, KeyboardInterrupt too: never let Thespian rerun the handler
            return None, TaskError.from_exception(ErrorKind.HANDLER_ERROR, exc), True
        try:
            payload = dump_content(content)
        except BaseException as exc:  # BadContent, or KeyboardInterrupt from a user's __reduce__
            return None, TaskError(ErrorKind.UNPICKLABLE_RESULT, f"the handler's result: {safe_text(exc)}"), True
        limit = self.start.max_result_bytes if self.start is not None else len(payload)
        if len(payload) > limit:
            message = f"the handler's result is {len(payload)} bytes pickled, over this node's limit of {limit}"
            return None, TaskError(ErrorKind.UNPICKLABLE_RESULT, message), True
        return payload, None, True
