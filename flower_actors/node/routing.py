"""The workload table: which app serves a workload, its queue, the cap on live ones, ordered stops, restarts."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..config import AppSpec, NodeConfig
from ..control import StopWorkload
from ..errors import ErrorKind
from ..messages import TaskIns, WorkloadId
from ..runtime.retry import RestartIntensity
from .workload import STOP, Answer, OrderedStop, Phase, Workload, tasks_of

__all__ = ["GIVE_UP_FOR", "WINDOW", "Restart", "WorkloadTable"]

WINDOW = 64
"""Most tasks one WorkloadClient holds (running or waiting in its process); more wait in the queue."""
GIVE_UP_FOR = 30.0
"""After a workload's WorkloadClients died too often without running a task (``RestartIntensity``),
how long its tasks are answered with an error at once before a fresh WorkloadClient is tried again."""


@dataclass
class Routed:
    """A pulled batch, routed: workloads to place (new) and to feed, in that order; tasks to answer; drops."""

    new: list[Workload] = field(default_factory=list)
    feed: list[Workload] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Restart:
    """After a death: a fresh record to start after ``delay`` seconds (0: now), or none; tasks to answer."""

    workload: Workload | None = None
    delay: float = 0.0
    answers: list[Answer] = field(default_factory=list)
    gave_up: str | None = None
    """Why the node gave up on the workload (its processes keep dying before they run a task)."""


class WorkloadTable:
    """Every workload this node serves now, by id."""

    def __init__(self, config: NodeConfig) -> None:
        self.node_id = config.node_id
        self.default_app = config.default_app
        self.apps: dict[WorkloadId, AppSpec] = config.workload_specs
        self.max_workloads = config.max_workloads
        self.workloads: dict[WorkloadId, Workload] = {}
        self.restarts: dict[WorkloadId, RestartIntensity] = {}  # deaths without progress, per workload
        self.given_up: dict[WorkloadId, tuple[float, str]] = {}  # workload -> (monotonic until, why)
        self.tokens = itertools.count(1)

    def __iter__(self) -> Iterator[Workload]:
        return iter(list(self.workloads.values()))

    def get(self, workload_id: WorkloadId) -> Workload | None:
        return self.workloads.get(workload_id)

    def register(self, workload_id: WorkloadId, app: object) -> str | None:
        """Serve ``workload_id`` with ``app`` (an ``AppSpec``) from its next WorkloadClient on; why if refused."""
        if not isinstance(app, AppSpec):
            return f"app must be an AppSpec, got {type(app).__name__}"
        if workload_id in self.workloads:
            return f"workload {workload_id!r} is running; stop it (StopWorkload) before changing its app"
        self.apps[workload_id] = app
        self.given_up.pop(workload_id, None)  # a new app is worth a fresh try at once
        return None

    # Routing.

    def route(self, task: TaskIns, now: float) -> tuple[Workload, bool] | Answer:
        """Queue ``task`` at its workload: (the workload, whether it is new), or why it is refused."""
        workload = self.workloads.get(task.workload_id)
        created = workload is None
        if workload is None:
            reason = self._given_up(task.workload_id, now)
            if reason is not None:
                return Answer(task, ErrorKind.WORKLOAD_CLIENT_DIED, reason)
            app = self.apps.get(task.workload_id, self.default_app)
            if app is None:
                why = f"node {self.node_id!r} has no app for workload {task.workload_id!r} and no default app"
                return Answer(task, ErrorKind.UNKNOWN_WORKLOAD, why)
            workload = self.workloads[task.workload_id] = Workload(task.workload_id, app)
        workload.append(task)
        return workload, created

    def route_batch(self, items: Any, accept: Callable[[Any], TaskIns | Answer | str | None], now: float) -> Routed:
        """Route a pulled batch in order (a stop between two tasks stays between them), each item through ``accept``."""
        routed = Routed()
        touched: dict[WorkloadId, Workload] = {}
        for item in items:
            if isinstance(item, StopWorkload):
                workload = self.route_stop(item.workload_id)
            else:
                accepted = accept(item)
                outcome = self.route(accepted, now) if isinstance(accepted, TaskIns) else accepted
                if isinstance(outcome, Answer):
                    routed.answers.append(outcome)
                elif isinstance(outcome, str):
                    routed.dropped.append(outcome)
                workload = outcome[0] if isinstance(outcome, tuple) else None
                if isinstance(outcome, tuple) and outcome[1]:
                    routed.new.append(outcome[0])
            if workload is not None and workload.workload_id not in touched:
                touched[workload.workload_id] = workload
        # one message per WorkloadClient, first to those that had one (a new one may wait for a fork)
        new = {w.workload_id for w in routed.new}
        routed.feed = [w for w in touched.values() if w.workload_id not in new] + routed.new
        return routed

    def route_stop(self, workload_id: WorkloadId) -> Workload | None:
        """An ordered stop: the tasks before it finish in the current WorkloadClient, those after it in a fresh one."""
        workload = self.workloads.get(workload_id)
        if workload is not None:  # without one, the next task starts a fresh one anyway
            workload.append(STOP)
        return workload

    def fresh(self, old: Workload, items: list[TaskIns | OrderedStop]) -> Workload:
        """A new record for ``old``'s workload (a fresh WorkloadClient, fresh state) holding ``items``."""
        workload = Workload(old.workload_id, self.apps.get(old.workload_id, old.app))
        workload.extend_queue(items)
        self.workloads[old.workload_id] = workload
        return workload

    def forget(self, workload: Workload) -> None:
        """Drop ``workload`` from the table (its process is retiring or gone)."""
        if self.workloads.get(workload.workload_id) is workload:
            del self.workloads[workload.workload_id]

    # Feeding a WorkloadClient.

    def stop_due(self, workload: Workload) -> bool:
        """Its next item is an ordered stop and its process holds no task."""
        return bool(workload.stops) and not workload.running and workload.queue[0] is STOP

    def pass_stop(self, workload: Workload) -> Workload | None:
        """Consume the ordered stop at the head of ``workload``'s queue.

        If its process ran the app (it has state), the workload is forgotten:
        the caller stops that process, and what followed the stop waits in the
        returned fresh record (``None`` if nothing followed). Otherwise there is
        no state to drop and ``workload`` itself goes on (returned).
        """
        workload.queue.popleft()
        workload.stops -= 1
        if workload.phase not in (Phase.STARTING, Phase.LIVE):
            return workload
        rest = workload.take_queue()
        self.forget(workload)
        return self.fresh(workload, rest) if rest else None

    def next_tasks(self, workload: Workload, window: int) -> tuple[TaskIns, ...]:
        """Take the tasks to send to ``workload``'s process now (up to ``window`` held, never past a stop)."""
        room = window - len(workload.running)
        taken: list[TaskIns] = []
        while workload.queue and len(taken) < room:
            item = workload.queue[0]
            if not isinstance(item, TaskIns):
                break
            workload.queue.popleft()
            taken.append(item)
        for task in taken:
            workload.sent += 1
            workload.running[task.task_id] = (workload.sent, task)
        return tuple(taken)

    # The cap on live WorkloadClients.

    def live(self) -> int:
        return sum(1 for w in self.workloads.values() if w.has_process)

    def at_cap(self) -> bool:
        return self.max_workloads is not None and self.live() >= self.max_workloads

    def idle_for(self, timeout: float | None, now: float) -> list[Workload]:
        """Live workloads idle longer than ``timeout`` seconds (none if ``None``)."""
        return [
            w
            for w in self.workloads.values()
            if timeout is not None and w.phase is Phase.LIVE and w.idle and now - w.last_active > timeout
        ]

    def least_recently_used_idle(self) -> Workload | None:
        idle = [w for w in self.workloads.values() if w.phase is Phase.LIVE and w.idle]
        return min(idle, key=lambda w: w.last_active) if idle else None

    def parked(self) -> list[Workload]:
        return [w for w in self.workloads.values() if w.phase is Phase.PARKED]

    def in_flight(self) -> int:
        return sum(w.queued + len(w.running) for w in self.workloads.values())

    # Restarts.

    def settle(self, workload: Workload, state: tuple[int, float, int] | None) -> None:
        """Forget the tasks ``workload``'s process finished by its board ``state`` (started seq, at, finished seq),
        as its ``TasksDone`` would: the process reports only when asked (``RunTasks.report``)."""
        if state is None:
            return
        finished = state[2]
        done = [task_id for task_id, (seq, _) in workload.running.items() if seq <= finished]
        if done:
            for task_id in done:
                del workload.running[task_id]
            workload.last_active = time.monotonic()
            self.progressed(workload.workload_id)

    def settle_all(self, board: Callable[[Workload], tuple[int, float, int] | None]) -> None:
        """``settle`` every workload that holds tasks, by ``board`` (its process's board state)."""
        for workload in self.workloads.values():
            if workload.running:
                self.settle(workload, board(workload))

    def progressed(self, workload_id: WorkloadId) -> None:
        """A task of the workload ran: earlier deaths of its processes no longer count."""
        self.restarts.pop(workload_id, None)

    def restart(self, old: Workload, progressed: bool, now: float, stopping: bool) -> Restart:
        """After ``old``'s process died or was killed: a fresh record for its queued tasks, or give up.

        A death that made no progress (the process never ran a task) delays
        the fresh process with ``RestartIntensity``'s back-off and, past its
        limit, gives up on the workload for ``GIVE_UP_FOR`` seconds.
        """
        self.forget(old)
        items = old.take_queue()
        delay: float | None = 0.0
        if progressed:
            self.restarts.pop(old.workload_id, None)
        else:
            delay = self.restarts.setdefault(old.workload_id, RestartIntensity()).died(now)
        if stopping:
            return Restart(
                answers=[Answer(t, ErrorKind.NODE_SHUTTING_DOWN, "the node is shutting down") for t in tasks_of(items)]
            )
        if not tasks_of(items):
            return Restart()
        if delay is None:
            del self.restarts[old.workload_id]
            reason = (
                f"the WorkloadClient of workload {old.workload_id!r} died {RestartIntensity.max_restarts + 1} times "
                f"in a row before it ran a task (does app {old.app.ref!r} kill its process while loading?); "
                f"this workload's tasks get this error for {GIVE_UP_FOR:.0f} s, then a fresh WorkloadClient is tried"
            )
            self.given_up[old.workload_id] = (now + GIVE_UP_FOR, reason)
            answers = [Answer(t, ErrorKind.WORKLOAD_CLIENT_DIED, reason) for t in tasks_of(items)]
            return Restart(answers=answers, gave_up=reason)
        fresh = self.fresh(old, items)
        if delay > 0:
            fresh.phase = Phase.HELD
            fresh.held = next(self.tokens)
        return Restart(fresh, delay)

    def stop(self, workload: Workload, kind: str | None = None, message: str = "") -> list[Answer]:
        """Forget ``workload`` now; with ``kind``, its tasks not sent to its process are answered with it
        (without, they stay queued: its process answers them with ``stop_reason`` when it exits)."""
        self.forget(workload)
        self.restarts.pop(workload.workload_id, None)
        return [Answer(t, kind, message) for t in tasks_of(workload.take_queue())] if kind else []

    def drop_waiting(self) -> list[Answer]:
        """The node stops: workloads without a process (parked, held) never start; answer their tasks."""
        answers = []
        for workload in [w for w in self.workloads.values() if w.phase in (Phase.PARKED, Phase.HELD)]:
            answers += self.stop(workload, ErrorKind.NODE_SHUTTING_DOWN, "the node is shutting down")
        return answers

    def by_incarnation(self, incarnation: int) -> Workload | None:
        """The workload whose process is ``incarnation``."""
        return next((w for w in self.workloads.values() if w.incarnation == incarnation), None)

    def restart_due(self, workload_id: WorkloadId, token: int) -> Workload | None:
        """The workload whose restart delay (``token``) is over, if it still waits for it."""
        workload = self.workloads.get(workload_id)
        if workload is None or workload.phase is not Phase.HELD or workload.held != token:
            return None
        workload.held = 0
        workload.phase = Phase.PARKED
        return workload

    def _given_up(self, workload_id: WorkloadId, now: float) -> str | None:
        entry = self.given_up.get(workload_id)
        if entry is not None and now >= entry[0]:
            del self.given_up[workload_id]
            return None
        return entry[1] if entry else None
