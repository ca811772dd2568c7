"""``EmbeddedServer``: a task server that lives in the same actor system.

It serves several nodes and several drivers at once, as in the FED's
picture: each ``TaskIns`` is queued for its ``node_id`` and only that node's
pulls take it; each result goes back to the driver that submitted its task.
Pulls and collects may wait (long-poll): they are held until something
exists or their ``wait_s`` runs out. A pull takes its tasks for good
(at-most-once delivery, like Flower's SuperLink). A result whose task
already has one is dropped, so a node that pushes again after a lost
acknowledgement never produces a second answer.

``SetServerFault`` makes it behave like an unreachable (``"silent"``) or a
failing (``"error"``) server towards nodes, for fault-injection tests.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict, deque
from datetime import timedelta
from typing import Any, Deque, Dict, Optional, Tuple

from thespian.actors import ActorAddress, WakeupMessage

from .actor_base import SafeActor
from .control import StopWorkload
from .link import (
    CollectTaskRes,
    GetServerStatus,
    LinkError,
    PullTaskIns,
    PushTaskRes,
    ServerStatus,
    SetServerFault,
    SubmitTaskIns,
    TaskInsAccepted,
    TaskInsBatch,
    TaskResAck,
    TaskResBatch,
)
from .messages import NodeId, TaskIns, TaskRes, take_batch, task_ins_problem

__all__ = ["EmbeddedServer"]

log = logging.getLogger(__name__)

SEEN_WINDOW = 1_000_000
"""How many finished task ids are remembered to refuse a resubmitted id."""


class EmbeddedServer(SafeActor):
    """Queues tasks per node, results per driver; answers pulls, pushes, submits and collects."""

    def __init__(self) -> None:
        super().__init__()
        self.queues: Dict[NodeId, Deque[Any]] = {}
        self.pending_pulls: Dict[NodeId, Tuple[ActorAddress, PullTaskIns]] = {}
        self.owner: Dict[str, str] = {}  # task id -> driver id, until its result is stored
        self.finished: "OrderedDict[str, None]" = OrderedDict()
        self.results: Dict[str, Deque[TaskRes]] = {}
        self.pending_collects: Dict[str, Tuple[ActorAddress, CollectTaskRes]] = {}
        self.submitted = 0
        self.pulled = 0
        self.stored = 0
        self.duplicates_dropped = 0
        self.last_error: Optional[str] = None
        self.fault: Optional[str] = None

    # Driver side.

    def receive_SubmitTaskIns(self, message: SubmitTaskIns, sender: ActorAddress) -> None:
        accepted, rejected = [], []
        touched = set()
        tasks = message.tasks if isinstance(message.tasks, (tuple, list)) else ()
        if not isinstance(message.tasks, (tuple, list)):
            rejected.append(("?", f"tasks must be a tuple or a list, got {type(message.tasks).__name__}"))
        for task in tasks:
            if isinstance(task, tuple) and len(task) == 2 and isinstance(task[1], StopWorkload):
                node_id, stop = task
                self.queues.setdefault(node_id, deque()).append(stop)
                touched.add(node_id)
                accepted.append(f"stop:{stop.workload_id}")
                continue
            problem = task_ins_problem(task)
            if problem is None and (task.task_id in self.owner or task.task_id in self.finished):
                problem = f"task id {task.task_id} was already submitted"
            if problem is not None:
                rejected.append((str(getattr(task, "task_id", "?")), problem))
                continue
            self.owner[task.task_id] = message.driver_id
            self.queues.setdefault(task.node_id, deque()).append(task)
            touched.add(task.node_id)
            accepted.append(task.task_id)
        self.submitted += len(accepted)
        if rejected:
            self.last_error = f"refused {len(rejected)} task(s), e.g. {rejected[0][1]}"
            log.warning("driver %s: %s", message.driver_id, self.last_error)
        self.send(sender, TaskInsAccepted(message.request_id, tuple(accepted), tuple(rejected)))
        for node_id in touched:
            if node_id in self.pending_pulls:
                self._answer_pull(node_id)

    def receive_CollectTaskRes(self, message: CollectTaskRes, sender: ActorAddress) -> None:
        previous = self.pending_collects.pop(message.driver_id, None)
        if previous is not None:  # one collect per driver: the older one gets nothing
            self.send(previous[0], TaskResBatch(previous[1].request_id, ()))
        self.pending_collects[message.driver_id] = (sender, message)
        if self.results.get(message.driver_id) or message.wait_s <= 0:
            self._answer_collect(message.driver_id)
        else:
            self.wakeupAfter(timedelta(seconds=message.wait_s), ("collect", message.driver_id, message.request_id))

    def _answer_collect(self, driver_id: str) -> None:
        who, request = self.pending_collects.pop(driver_id)
        queue = self.results.get(driver_id)
        batch: Tuple[TaskRes, ...] = ()
        if queue:
            batch = take_batch(queue, request.max_results)
        self.send(who, TaskResBatch(request.request_id, batch))

    # Node side.

    def _refuse(self, request_id: int, sender: ActorAddress) -> bool:
        """Apply an injected fault to a node request; True if it must not be served."""
        if self.fault == "error":
            self.send(sender, LinkError(request_id, "injected server fault"))
        return self.fault is not None

    def receive_SetServerFault(self, message: SetServerFault, sender: ActorAddress) -> None:
        if message.mode not in (None, "silent", "error"):
            log.error("unknown fault mode %r ignored", message.mode)
        else:
            self.fault = message.mode
            if message.mode is not None:  # an unreachable server answers nothing it held; a failing one fails it
                for who, pull in self.pending_pulls.values():
                    if message.mode == "error":
                        self.send(who, LinkError(pull.request_id, "injected server fault"))
                self.pending_pulls.clear()
        self.send(sender, SetServerFault(self.fault))

    def receive_PullTaskIns(self, message: PullTaskIns, sender: ActorAddress) -> None:
        if self._refuse(message.request_id, sender):
            return
        previous = self.pending_pulls.pop(message.node_id, None)
        if previous is not None:
            self.send(previous[0], TaskInsBatch(previous[1].request_id, ()))
        self.pending_pulls[message.node_id] = (sender, message)
        if self.queues.get(message.node_id) or message.wait_s <= 0:
            self._answer_pull(message.node_id)
        else:
            self.wakeupAfter(timedelta(seconds=message.wait_s), ("pull", message.node_id, message.request_id))

    def _answer_pull(self, node_id: NodeId) -> None:
        who, request = self.pending_pulls.pop(node_id)
        queue = self.queues.get(node_id)
        batch: Tuple[Any, ...] = ()
        if queue:
            batch = take_batch(queue, request.max_tasks)
            self.pulled += sum(1 for t in batch if isinstance(t, TaskIns))
        self.send(who, TaskInsBatch(request.request_id, batch))

    def receive_PushTaskRes(self, message: PushTaskRes, sender: ActorAddress) -> None:
        if self._refuse(message.request_id, sender):
            return
        now = time.time()
        touched = set()
        for result in message.results:
            if not isinstance(result, TaskRes):
                log.error("node pushed a %s, not a TaskRes; dropped", type(result).__name__)
                continue
            driver_id = self.owner.pop(result.ins_id, None)
            if driver_id is None:
                self.duplicates_dropped += 1  # already answered, or never submitted here
                continue
            self.finished[result.ins_id] = None
            if len(self.finished) > SEEN_WINDOW:
                self.finished.popitem(last=False)
            self.results.setdefault(driver_id, deque()).append(result.stamped(stored_at=now))
            touched.add(driver_id)
            self.stored += 1
        self.send(sender, TaskResAck(message.request_id, now))
        for driver_id in touched:
            if driver_id in self.pending_collects:
                self._answer_collect(driver_id)

    # Timers and status.

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        payload = message.payload
        if not (isinstance(payload, tuple) and len(payload) == 3):
            return
        kind, key, request_id = payload
        pending = (self.pending_pulls if kind == "pull" else self.pending_collects).get(key)
        if pending is None or pending[1].request_id != request_id:
            return  # already answered
        if kind == "pull":
            self._answer_pull(key)
        else:
            self._answer_collect(key)

    def receive_GetServerStatus(self, message: GetServerStatus, sender: ActorAddress) -> None:
        self.send(
            sender,
            ServerStatus(
                request_id=message.request_id,
                queued=tuple((n, len(q)) for n, q in self.queues.items() if q),
                waiting_results=tuple((d, len(q)) for d, q in self.results.items() if q),
                submitted=self.submitted,
                pulled=self.pulled,
                stored=self.stored,
                duplicates_dropped=self.duplicates_dropped,
                pid=os.getpid(),
                session_id=os.getsid(0),
                last_error=self.last_error,
            ),
        )
