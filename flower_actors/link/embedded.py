"""``EmbeddedServer``: a task server that lives in the same actor system (``NodeLink`` and ``DriverLink``).

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
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from thespian.actors import ActorAddress, WakeupMessage

from ..control import StopWorkload
from ..messages import NodeId, TaskIns, TaskRes, take_batch, task_ins_problem
from ..runtime.actor_base import SafeActor
from ..runtime.recent_ids import RecentIds
from .protocol import (
    CollectTaskRes,
    LinkError,
    PullTaskIns,
    PushTaskRes,
    SubmitTaskIns,
    TaskInsAccepted,
    TaskInsBatch,
    TaskResAck,
    TaskResBatch,
)

__all__ = ["EmbeddedServer", "GetServerStatus", "ServerStatus", "SetServerFault"]

log = logging.getLogger(__name__)

SEEN_WINDOW = 1_000_000
"""How many finished task ids are remembered to refuse a resubmitted id."""


@dataclass(frozen=True)
class SetServerFault:
    """Fault injection for the embedded server: how it treats node requests from now on.

    ``mode`` is ``None`` (healthy), ``"silent"`` (drops pulls and pushes
    unanswered, like an unreachable server) or ``"error"`` (answers them with
    ``LinkError``). Driver requests are always served.
    """

    mode: str | None = None


@dataclass(frozen=True)
class GetServerStatus:
    """Anyone → server: report counters."""

    request_id: int = 0


@dataclass(frozen=True)
class ServerStatus:
    """Server counters: tasks queued per node, results waiting per driver, totals."""

    request_id: int
    queued: tuple[tuple[NodeId, int], ...]
    waiting_results: tuple[tuple[str, int], ...]
    submitted: int
    pulled: int
    stored: int
    duplicates_dropped: int
    pid: int
    session_id: int
    last_error: str | None = None


Request = TypeVar("Request", PullTaskIns, CollectTaskRes)


@dataclass(frozen=True)
class _HoldExpired:
    """Timer: a held request may have waited its ``wait_s``."""

    kind: str
    key: Hashable
    request_id: int


class HeldRequests(Generic[Request]):
    """Long-poll holding: at most one waiting request per key (a node, a driver), answered by ``answer``.

    A newer request of the same key answers the older one as empty; a request
    is answered at once when ``ready`` or when it does not wait, else when
    ``ready`` becomes true (``poke``) or its ``wait_s`` runs out (``expired``).
    """

    def __init__(self, kind: str, answer: Callable[[ActorAddress, Request, bool], None]) -> None:
        self.kind = kind
        self.answer: Callable[[ActorAddress, Request, bool], None] = answer  # (who, request, empty)
        self.waiting: dict[Hashable, tuple[ActorAddress, Request]] = {}

    def hold(self, actor: SafeActor, key: Hashable, who: ActorAddress, request: Request, ready: bool) -> None:
        previous = self.waiting.pop(key, None)
        if previous is not None:
            self.answer(previous[0], previous[1], True)
        if ready or request.wait_s <= 0:
            self.answer(who, request, False)
        else:
            self.waiting[key] = (who, request)
            actor.wakeupAfter(timedelta(seconds=request.wait_s), _HoldExpired(self.kind, key, request.request_id))

    def poke(self, key: Hashable) -> None:
        """Something for ``key`` exists now: answer its held request, if any."""
        held = self.waiting.pop(key, None)
        if held is not None:
            self.answer(held[0], held[1], False)

    def expired(self, timer: _HoldExpired) -> None:
        held = self.waiting.get(timer.key)
        if timer.kind == self.kind and held is not None and held[1].request_id == timer.request_id:
            self.poke(timer.key)

    def drop_all(self) -> list[tuple[ActorAddress, Request]]:
        """Forget every held request; return them."""
        held, self.waiting = list(self.waiting.values()), {}
        return held


class EmbeddedServer(SafeActor):
    """Queues tasks per node, results per driver; answers pulls, pushes, submits and collects."""

    def __init__(self) -> None:
        super().__init__()
        self.queues: dict[NodeId, deque[Any]] = {}
        self.owner: dict[str, str] = {}  # task id -> driver id, until its result is stored
        self.finished = RecentIds(SEEN_WINDOW)
        self.results: dict[str, deque[TaskRes]] = {}
        self.pulls: HeldRequests[PullTaskIns] = HeldRequests("pull", self._answer_pull)
        self.collects: HeldRequests[CollectTaskRes] = HeldRequests("collect", self._answer_collect)
        self.submitted = 0
        self.pulled = 0
        self.stored = 0
        self.duplicates_dropped = 0
        self.last_error: str | None = None
        self.fault: str | None = None

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
            self.pulls.poke(node_id)

    def receive_CollectTaskRes(self, message: CollectTaskRes, sender: ActorAddress) -> None:
        self.collects.hold(self, message.driver_id, sender, message, bool(self.results.get(message.driver_id)))

    def _answer_collect(self, who: ActorAddress, request: CollectTaskRes, empty: bool) -> None:
        queue = self.results.get(request.driver_id)
        batch = take_batch(queue, request.max_results) if queue and not empty else ()
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
                for who, pull in self.pulls.drop_all():
                    if message.mode == "error":
                        self.send(who, LinkError(pull.request_id, "injected server fault"))
        self.send(sender, SetServerFault(self.fault))

    def receive_PullTaskIns(self, message: PullTaskIns, sender: ActorAddress) -> None:
        if not self._refuse(message.request_id, sender):
            self.pulls.hold(self, message.node_id, sender, message, bool(self.queues.get(message.node_id)))

    def _answer_pull(self, who: ActorAddress, request: PullTaskIns, empty: bool) -> None:
        queue = self.queues.get(request.node_id)
        batch = take_batch(queue, request.max_tasks) if queue and not empty else ()
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
            self.finished.add(result.ins_id)
            self.results.setdefault(driver_id, deque()).append(result.stamped(stored_at=now))
            touched.add(driver_id)
            self.stored += 1
        self.send(sender, TaskResAck(message.request_id, now))
        for driver_id in touched:
            self.collects.poke(driver_id)

    # Timers and status.

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        if isinstance(message.payload, _HoldExpired):
            (self.pulls if message.payload.kind == "pull" else self.collects).expired(message.payload)

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
