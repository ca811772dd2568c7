"""What a node owes when processes end or hang: unconfirmed tasks, the tasks a process never started, deadlines."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ErrorKind
from ..messages import TaskIns, TaskRes
from .spill import read_spill
from .workload import Answer, Decision, Exit, Kill, Phase, Workload, tasks_of

__all__ = ["DEADLINE_POLL", "Expired", "Recovery", "deadline_of"]

DEADLINE_POLL = 0.5
"""Longest gap between two deadline checks of a process that holds tasks with a deadline."""

BoardState = tuple[int, float, int]
"""A process's task-board slot: (started seq, started at, finished seq)."""


def deadline_of(task: TaskIns, workload: Workload, node_deadline: float | None) -> float | None:
    """The most specific deadline of ``task``: its own, its app's, then the node's."""
    return task.deadline_s or workload.app.deadline_s or node_deadline


@dataclass(frozen=True)
class Expired:
    """A handler ran past its deadline: answer ``task``, kill the process."""

    task: TaskIns
    deadline: float


class Recovery:
    """Tasks sent to a WorkloadClient whose result the Sender has not reported taking yet.

    When a process ends, its spill file's results are sent on, the tasks it
    never started go back to the queue, and what is still unconfirmed after
    a grace period is answered with an error.
    """

    def __init__(self, spill_dir: str | None) -> None:
        self.unconfirmed: dict[str, tuple[int, TaskIns]] = {}  # task id -> (incarnation, task)
        self.spill_dir = spill_dir

    def spill_path(self, incarnation: int) -> str | None:
        """Where process ``incarnation`` keeps results not yet delivered (``spill``)."""
        return os.path.join(self.spill_dir, str(incarnation)) if self.spill_dir else None

    def read_back(self, incarnation: int | None) -> list[TaskRes]:
        """Results in the spill file of ``incarnation`` (of every process, if ``None``) the Sender never reported."""
        if incarnation is not None:
            paths = [self.spill_path(incarnation)]
        elif self.spill_dir and os.path.isdir(self.spill_dir):
            paths = [os.path.join(self.spill_dir, name) for name in os.listdir(self.spill_dir)]
        else:
            paths = []
        return [r for path in paths if path for r in read_spill(path) if self.unconfirmed.pop(r.ins_id, None)]

    def sent(self, workload: Workload, tasks: tuple[TaskIns, ...], node_deadline: float | None) -> float | None:
        """``tasks`` went to ``workload``'s process: seconds until its first deadline check, if one is due now."""
        for task in tasks:
            self.unconfirmed[task.task_id] = (workload.incarnation, task)
        return None if workload.watched else self.first_check(workload, tasks, node_deadline)

    def confirmed(self, task_ids: tuple[str, ...]) -> None:
        """The Sender holds these results."""
        for task_id in task_ids:
            self.unconfirmed.pop(task_id, None)

    def answered(self, task_id: str) -> None:
        """The LeadClient answered this task itself (an error result)."""
        self.unconfirmed.pop(task_id, None)

    def owes(self, incarnation: int) -> bool:
        """Whether some task sent to process ``incarnation`` is still unconfirmed."""
        return any(inc == incarnation for inc, _ in self.unconfirmed.values())

    def orphans(self, incarnation: int | None, kind: str, message: str) -> list[Answer]:
        """Answer the unconfirmed tasks of ``incarnation`` (all, if ``None``)."""
        owed = [task for inc, task in self.unconfirmed.values() if incarnation is None or inc == incarnation]
        return [self._answer(task, kind, message) for task in owed]

    def _answer(self, task: TaskIns, kind: str, message: str) -> Answer:
        """Decide an error answer for ``task``: it is no longer owed."""
        self.unconfirmed.pop(task.task_id, None)
        return Answer(task, kind, message)

    def died(self, workload: Workload, state: BoardState | None) -> tuple[list[Answer], bool]:
        """``workload``'s process ended on its own: the answer its running task gets, and whether it made
        progress (it started a task; one that died before, while loading its app, say, did not)."""
        running = self.split_running(workload, state)
        message = f"the process running workload {workload.workload_id!r} (pid {workload.pid}) exited before answering"
        answers = [self._answer(running, ErrorKind.WORKLOAD_CLIENT_DIED, message)] if running is not None else []
        return answers, state is None or state[0] > 0

    def retired_ended(self, workload: Workload, state: BoardState | None) -> tuple[list[Answer], bool]:
        """A process asked to exit has ended: answers for what it held, and whether it died in a handler."""
        answers, _ = self.died(workload, state)
        died = bool(answers)  # it was in a handler: asked to exit after its task, it died in it
        return answers + [Answer(t, *workload.stop_reason) for t in tasks_of(workload.take_queue())], died

    def expired(self, workload: Workload, verdict: Expired, state: BoardState | None) -> list[Answer]:
        """A handler passed its deadline: the tasks after it go back to the queue; it is answered."""
        self.split_running(workload, state)
        if verdict.task in workload.queue:  # it had not started: its app was still loading
            workload.queue.remove(verdict.task)
        message = (
            f"the handler ran past its deadline of {verdict.deadline} s; its process (pid {workload.pid}) was killed"
        )
        return [self._answer(verdict.task, ErrorKind.DEADLINE_EXCEEDED, message)]

    def stop_all(self, workloads: list[Workload], board: Callable[[Workload], BoardState | None]) -> list[Decision]:
        """The node stops: answer what each holds and has not finished; kill processes in a handler."""
        decisions: list[Decision] = []
        for workload in workloads:
            running = self.split_running(workload, board(workload))
            decisions += [
                Answer(t, ErrorKind.NODE_SHUTTING_DOWN, "the node stopped before the task started")
                for t in tasks_of(workload.take_queue())
            ]
            if running is not None and workload.process is not None:
                decisions.append(
                    self._answer(running, ErrorKind.NODE_SHUTTING_DOWN, "the node stopped before the handler finished")
                )
                decisions.append(Kill(workload.process))
            elif workload.process is not None and workload.phase is not Phase.RETIRING:
                decisions.append(Exit(workload.process))
        return decisions

    def split_running(self, workload: Workload, state: BoardState | None) -> TaskIns | None:
        """A process ended or is being killed: sort out the tasks it held; return the one it was running.

        By the task board: tasks it never started go back to the front of the
        workload's queue; tasks it finished stay unconfirmed (their results are
        on their way, in its spill file, or answered later as orphans).
        Without a board slot it held one task, which counts as running.
        """
        held = list(workload.running.values())
        workload.running.clear()
        if state is None:
            return held[0][1] if held else None
        started, _, finished = state
        running = None
        unstarted = []
        for seq, task in held:
            if seq == started and seq > finished:
                running = task
            elif seq > started:
                unstarted.append(task)
        for task in reversed(unstarted):
            self.unconfirmed.pop(task.task_id, None)
            workload.queue.appendleft(task)
        return running

    @staticmethod
    def first_check(workload: Workload, tasks: tuple[TaskIns, ...], node_deadline: float | None) -> float | None:
        """Seconds until the first deadline check after sending ``tasks`` (``None``: none of them has a deadline)."""
        deadlines = [d for d in (deadline_of(t, workload, node_deadline) for t in tasks) if d]
        return min(DEADLINE_POLL, *deadlines) if deadlines else None

    @staticmethod
    def check(
        workload: Workload, state: BoardState | None, now: float, node_deadline: float | None
    ) -> Expired | float | None:
        """The verdict on ``workload``'s running task: ``Expired``, seconds until the next check, or ``None``
        (it holds nothing: the next tasks sent start the watch again).

        The deadline counts from the handler's real start, read on the task
        board; without a board slot (one task at a time), from when it was sent.
        """
        if not workload.running:
            return None
        if state is None:
            task = next(iter(workload.running.values()))[1]
            started_at = workload.fed_at
        else:
            started, started_at, finished = state
            if started == 0 and finished < 0:  # loading its app: the first task's deadline counts from the load
                running = [min(workload.running.values(), key=lambda held: held[0])[1]]
            else:
                running = [task for seq, task in workload.running.values() if seq == started]
            if started <= finished or not running:  # between two tasks: look again soon
                return DEADLINE_POLL
            task = running[0]
        deadline = deadline_of(task, workload, node_deadline)
        if deadline is None:
            return DEADLINE_POLL
        left = started_at + deadline - now
        return Expired(task, deadline) if left <= 0 else left
