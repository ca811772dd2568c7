"""``LeadClient``: one actor per node that pulls tasks and routes them.

It pulls ``TaskIns`` from the server (every ``poll_interval`` on a drift-free
schedule, or continuously in long-poll mode), creates a ``WorkloadClient``
child the first time a workload appears, and forwards each task to it at
once. It never runs user code and never waits on a handler: per workload it
keeps at most ``WINDOW`` tasks at the child (so the next task is already
there when one finishes) and the rest in its own queue. Results go from the
WorkloadClient straight to the Sender; the LeadClient only hears ``TaskDone``.

When a WorkloadClient dies, every task it held gets a ``WorkloadClientDied``
error and the workload's queued tasks go to a fresh WorkloadClient.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Deque, Dict, List, Optional, Tuple

from thespian.actors import ActorAddress, ActorExitRequest, ChildActorExited, WakeupMessage

from .actor_base import SafeActor
from .config import AppSpec, NodeConfig
from .control import (
    FlushSender,
    GetNodeStatus,
    LeadClientStarted,
    NodeStatus,
    NodeStopped,
    RegisterWorkload,
    SenderFlushed,
    SenderProgress,
    StartLeadClient,
    StartSender,
    StartWorkloadClient,
    StopNode,
    TaskDone,
    WorkloadClientStarted,
    WorkloadRegistered,
)
from .errors import ErrorKind
from .link import PullTaskIns, TaskInsBatch
from .messages import TaskError, TaskIns, TaskRes, WorkloadId, task_ins_problem
from .sender import Sender
from .workload_client import WorkloadClient

__all__ = ["LeadClient"]

log = logging.getLogger(__name__)

WINDOW = 2
"""Tasks of one workload held by its WorkloadClient at once (running + next)."""
HOUSEKEEPING_PERIOD = 1.0
"""Seconds between checks for lost pulls and stop deadlines."""

_TICK = "pull-tick"
_HOUSEKEEPING = "housekeeping"


@dataclass
class _Workload:
    """What the LeadClient knows about one live WorkloadClient."""

    workload_id: WorkloadId
    address: ActorAddress
    app: AppSpec
    pid: Optional[int] = None
    queue: Deque[TaskIns] = field(default_factory=deque)
    """Tasks waiting at the LeadClient."""
    held: "OrderedDict[str, TaskIns]" = field(default_factory=OrderedDict)
    """Tasks sent to the WorkloadClient and not done yet, oldest first."""


class LeadClient(SafeActor):
    """Pulls tasks for one node and routes each to its workload's WorkloadClient."""

    def __init__(self) -> None:
        super().__init__()
        self.config: Optional[NodeConfig] = None
        self.server: Optional[ActorAddress] = None
        self.sender: Optional[ActorAddress] = None
        self.apps: Dict[WorkloadId, AppSpec] = {}
        self.workloads: Dict[WorkloadId, _Workload] = {}
        self.seen: "OrderedDict[str, None]" = OrderedDict()
        self.anchor = 0.0
        self.next_pull_at: Optional[float] = None
        self.pull_request = 0
        self.pull_outstanding: Optional[Tuple[int, float]] = None  # request id, monotonic send time
        self.stopping: Optional[Tuple[ActorAddress, float]] = None  # who asked, deadline
        self.stop_finished = False
        self.exiting = False
        self.counters = dict.fromkeys(
            ("pulls", "pulled", "duplicates", "bad_input", "created", "done", "errors", "pushed", "push_errors"), 0
        )

    # Start and configuration.

    def receive_StartLeadClient(self, message: StartLeadClient, sender: ActorAddress) -> None:
        if self.config is not None:
            self.send(sender, self._started(error="this LeadClient is already started"))
            return
        if not isinstance(message.config, NodeConfig):
            self.send(sender, self._started(error=f"config must be a NodeConfig, got {type(message.config).__name__}"))
            return
        self.config = message.config
        self.server = message.server
        self.apps = message.config.workload_specs
        self.sender = self.createActor(Sender)
        self.send(self.sender, StartSender(message.config.node_id, message.server, self.myAddress))
        self.anchor = time.time()
        self._pull()
        if not message.config.long_poll:
            self._arm_tick()
        self.wakeupAfter(timedelta(seconds=HOUSEKEEPING_PERIOD), _HOUSEKEEPING)
        self.send(sender, self._started())
        log.info("node %r started (%s)", message.config.node_id, "long-poll" if message.config.long_poll else "periodic")

    def _started(self, error: Optional[str] = None) -> LeadClientStarted:
        node_id = self.config.node_id if self.config else None
        return LeadClientStarted(node_id, os.getpid(), os.getsid(0), self.next_pull_at or 0.0, error)  # type: ignore[arg-type]

    def receive_RegisterWorkload(self, message: RegisterWorkload, sender: ActorAddress) -> None:
        error = None
        if not isinstance(message.app, AppSpec):
            error = f"app must be an AppSpec, got {type(message.app).__name__}"
        elif message.workload_id in self.workloads:
            error = f"workload {message.workload_id!r} is running; its app cannot change while it lives"
        else:
            self.apps[message.workload_id] = message.app
        self.send(sender, WorkloadRegistered(message.workload_id, error))

    # Pulling.

    def _arm_tick(self) -> None:
        """Schedule the next periodic pull at anchor + k * interval (no drift)."""
        assert self.config is not None
        interval = self.config.poll_interval
        now = time.time()
        k = math.floor((now - self.anchor) / interval) + 1
        self.next_pull_at = self.anchor + k * interval
        self.wakeupAfter(timedelta(seconds=max(0.0, self.next_pull_at - now)), _TICK)

    def _pull(self) -> None:
        config = self.config
        if config is None or self.server is None or self.stopping is not None:
            return
        self.pull_request += 1
        self.pull_outstanding = (self.pull_request, time.monotonic())
        self.counters["pulls"] += 1
        wait = config.long_poll_wait if config.long_poll else 0.0
        self.send(self.server, PullTaskIns(config.node_id, self.pull_request, config.max_pull_batch, wait))

    def _pull_lost(self) -> bool:
        if self.pull_outstanding is None or self.config is None:
            return True
        wait = self.config.long_poll_wait if self.config.long_poll else 0.0
        return time.monotonic() - self.pull_outstanding[1] > wait + self.config.pull_timeout

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        if message.payload == _TICK:
            if self.stopping is None:
                if self.pull_outstanding is None or self._pull_lost():
                    self._pull()
                self._arm_tick()
        elif message.payload == _HOUSEKEEPING:
            self._housekeeping()

    def _housekeeping(self) -> None:
        if self.stopping is not None:
            if time.time() >= self.stopping[1]:
                self._finish_stop()
                return
        elif self.config is not None and self.config.long_poll and self._pull_lost():
            log.warning("pull %s got no answer; pulling again", self.pull_outstanding)
            self._pull()
        self.wakeupAfter(timedelta(seconds=HOUSEKEEPING_PERIOD), _HOUSEKEEPING)

    def receive_TaskInsBatch(self, batch: TaskInsBatch, sender: ActorAddress) -> None:
        if self.pull_outstanding is not None and batch.request_id == self.pull_outstanding[0]:
            self.pull_outstanding = None
        now = time.time()
        tasks = batch.tasks if isinstance(batch.tasks, (tuple, list)) else ()
        new_workloads: List[TaskIns] = []
        for item in tasks:
            self._accept(item, now, new_workloads)
        # Spawning costs milliseconds per process: first route what can start at once.
        for task in new_workloads:
            self._route(task)
        if self.config is not None and self.config.long_poll and self.pull_outstanding is None:
            self._pull()

    # Routing.

    def _accept(self, item: Any, now: float, new_workloads: List[TaskIns]) -> None:
        """Validate and deduplicate one pulled item; route it, or defer it if its workload needs a process."""
        assert self.config is not None
        problem = task_ins_problem(item)
        if problem is None and item.node_id != self.config.node_id:
            problem = f"task is addressed to node {item.node_id!r}, this is node {self.config.node_id!r}"
        if problem is not None:
            if isinstance(getattr(item, "task_id", None), str) and isinstance(item, TaskIns):
                self._answer_error(item, ErrorKind.BAD_TASK, problem)
            else:
                self.counters["bad_input"] += 1
                log.error("node %r dropped a malformed task from the server: %s", self.config.node_id, problem)
            return
        if item.task_id in self.seen:
            self.counters["duplicates"] += 1
            log.info("task %s pulled twice; handled once", item.task_id)
            return
        self.seen[item.task_id] = None
        if len(self.seen) > self.config.dedupe_window:
            self.seen.popitem(last=False)
        self.counters["pulled"] += 1
        task = replace(item, pulled_at=now)
        if self.stopping is not None:
            self._answer_error(task, ErrorKind.NODE_SHUTTING_DOWN, "the node is shutting down")
            return
        if task.workload_id in self.workloads:
            self._route(task)
        else:
            new_workloads.append(task)

    def _route(self, task: TaskIns) -> None:
        """Queue ``task`` at its workload (creating the WorkloadClient if needed) and feed it."""
        assert self.config is not None
        workload = self.workloads.get(task.workload_id)
        if workload is None:
            app = self.apps.get(task.workload_id, self.config.default_app)
            if app is None:
                self._answer_error(
                    task,
                    ErrorKind.UNKNOWN_WORKLOAD,
                    f"node {self.config.node_id!r} has no app for workload {task.workload_id!r} and no default app",
                )
                return
            workload = self._spawn(task.workload_id, app)
        workload.queue.append(task)
        self._feed(workload)

    def _spawn(self, workload_id: WorkloadId, app: AppSpec) -> _Workload:
        assert self.config is not None and self.sender is not None
        address = self.createActor(WorkloadClient)
        workload = _Workload(workload_id, address, app)
        self.workloads[workload_id] = workload
        self.counters["created"] += 1
        self.send(address, StartWorkloadClient(workload_id, self.config.node_id, app, self.sender, self.myAddress))
        return workload

    def _feed(self, workload: _Workload) -> None:
        while workload.queue and len(workload.held) < WINDOW:
            task = workload.queue.popleft()
            workload.held[task.task_id] = task
            self.send(workload.address, task)

    def _answer_error(self, task: TaskIns, kind: str, message: str) -> None:
        self.counters["errors"] += 1
        if self.sender is not None:
            self.send(self.sender, TaskRes.answer(task, error=TaskError(kind, message)))

    # Reports from children.

    def receive_WorkloadClientStarted(self, message: WorkloadClientStarted, sender: ActorAddress) -> None:
        workload = self.workloads.get(message.workload_id)
        if workload is not None:
            workload.pid = message.pid

    def receive_TaskDone(self, message: TaskDone, sender: ActorAddress) -> None:
        self.counters["done"] += 1
        if not message.ok:
            self.counters["errors"] += 1
        workload = self.workloads.get(message.workload_id)
        if workload is None:
            return
        workload.held.pop(message.ins_id, None)
        self._feed(workload)
        if self.stopping is not None:
            self._maybe_finish_stop()

    def receive_SenderProgress(self, message: SenderProgress, sender: ActorAddress) -> None:
        self.counters["pushed"] = message.pushed
        self.counters["push_errors"] = message.errors

    def receive_ChildActorExited(self, message: ChildActorExited, sender: ActorAddress) -> None:
        address = message.childAddress
        if address == self.sender:
            if self.exiting or self.stopping is not None:
                return
            log.error("node %r: the Sender exited; starting a new one", self.config and self.config.node_id)
            if self.config is not None and self.server is not None:
                self.sender = self.createActor(Sender)
                self.send(self.sender, StartSender(self.config.node_id, self.server, self.myAddress))
            return
        for workload_id, workload in list(self.workloads.items()):
            if workload.address == address:
                self._workload_exited(workload)
                return

    def _workload_exited(self, workload: _Workload) -> None:
        del self.workloads[workload.workload_id]
        if workload.held:
            log.warning(
                "workload %r: WorkloadClient (pid %s) exited holding %d task(s)",
                workload.workload_id,
                workload.pid,
                len(workload.held),
            )
        for task in workload.held.values():
            self._answer_error(
                task,
                ErrorKind.WORKLOAD_CLIENT_DIED,
                f"the process running workload {workload.workload_id!r} (pid {workload.pid}) exited before answering",
            )
        if workload.queue:
            if self.stopping is not None:
                for task in workload.queue:
                    self._answer_error(task, ErrorKind.NODE_SHUTTING_DOWN, "the node is shutting down")
            else:
                fresh = self._spawn(workload.workload_id, workload.app)
                fresh.queue.extend(workload.queue)
                self._feed(fresh)
        if self.stopping is not None:
            self._maybe_finish_stop()

    # Status and stop.

    def receive_GetNodeStatus(self, message: GetNodeStatus, sender: ActorAddress) -> None:
        c = self.counters
        in_flight = sum(len(w.queue) + len(w.held) for w in self.workloads.values())
        self.send(
            sender,
            NodeStatus(
                request_id=message.request_id,
                node_id=self.config.node_id if self.config else "",
                workloads_live=len(self.workloads),
                workloads_created=c["created"],
                tasks_pulled=c["pulled"],
                tasks_in_flight=in_flight,
                results_pushed=c["pushed"],
                errors=c["errors"],
                duplicates_dropped=c["duplicates"],
                bad_input=c["bad_input"],
                pulls=c["pulls"],
                next_pull_at=self.next_pull_at,
                handler_pids=tuple(w.pid for w in self.workloads.values() if w.pid is not None),
                pid=os.getpid(),
                session_id=os.getsid(0),
            ),
        )

    def receive_StopNode(self, message: StopNode, sender: ActorAddress) -> None:
        if self.config is None:  # never started: nothing to stop
            self.send(sender, NodeStopped("", 0, 0))
            return
        if self.stopping is not None:
            return
        timeout = message.timeout_s if isinstance(message.timeout_s, (int, float)) and message.timeout_s >= 0 else 5.0
        self.stopping = (sender, time.time() + timeout)
        self.next_pull_at = None
        for workload in self.workloads.values():  # tasks not started yet will not start
            for task in workload.queue:
                self._answer_error(task, ErrorKind.NODE_SHUTTING_DOWN, "the node is shutting down")
            workload.queue.clear()
        self._maybe_finish_stop()

    def _maybe_finish_stop(self) -> None:
        if self.stopping is not None and all(not w.held for w in self.workloads.values()):
            self._finish_stop()

    def _finish_stop(self) -> None:
        """Answer what is still held, stop every WorkloadClient, then flush the Sender."""
        assert self.stopping is not None
        if self.stop_finished:
            return
        self.stop_finished = True
        for workload in list(self.workloads.values()):
            for task in workload.held.values():
                self._answer_error(task, ErrorKind.NODE_SHUTTING_DOWN, "the node stopped before the handler finished")
            self._kill(workload, stuck=bool(workload.held))
            workload.held.clear()
        self.workloads.clear()
        if self.sender is not None:
            self.send(self.sender, FlushSender(time.time() + 5.0))
        else:
            self.receive_SenderFlushed(SenderFlushed(0, 0), self.myAddress)

    def _kill(self, workload: _Workload, stuck: bool) -> None:
        """Stop a WorkloadClient; SIGKILL it if its handler is stuck (it cannot read ActorExitRequest then)."""
        self.send(workload.address, ActorExitRequest())
        if stuck and workload.pid is not None:
            try:
                os.kill(workload.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def receive_ActorExitRequest(self, message: Any, sender: ActorAddress) -> None:
        # Thespian stops the children after this returns; they must not be replaced.
        self.exiting = True
        for workload in self.workloads.values():
            self._kill(workload, stuck=bool(workload.held))

    def receive_SenderFlushed(self, message: SenderFlushed, sender: ActorAddress) -> None:
        if self.stopping is None or self.config is None:
            return
        who = self.stopping[0]
        self.send(who, NodeStopped(self.config.node_id, message.pushed, message.unpushed))
        if self.sender is not None:
            self.send(self.sender, ActorExitRequest())
            self.sender = None

    def pids(self) -> List[int]:
        """Pids of live WorkloadClients (for diagnostics)."""
        return [w.pid for w in self.workloads.values() if w.pid is not None]
