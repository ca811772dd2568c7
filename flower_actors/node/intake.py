"""What comes in: when to pull and how much (``PullSchedule``), and which pulled items to accept (``Intake``)."""

from __future__ import annotations

import math
from typing import Any

from ..config import NodeConfig
from ..errors import ErrorKind
from ..link.protocol import PullTaskIns
from ..messages import TaskIns, task_ins_problem
from ..runtime.recent_ids import RecentIds
from ..runtime.retry import Backoff
from .workload import Answer

__all__ = ["Intake", "PullSchedule"]

BACKOFF_BASE = 0.1
"""First retry delay after a failed pull, doubled per failure up to ``retry_backoff_max``."""


class PullSchedule:
    """Pulls on a drift-free grid (``anchor + k * poll_interval``) or continuously (long-poll).

    At most one pull is outstanding; a failed or lost one backs off
    (``Backoff``); above ``max_in_flight`` or ``max_unpushed`` the node pauses.
    """

    def __init__(self, config: NodeConfig, anchor: float) -> None:
        self.config = config
        self.anchor = anchor
        self.next_pull_at: float | None = None
        self.request_id = 0
        self.outstanding: tuple[int, float] | None = None  # request id, monotonic send time
        self.backoff = Backoff(BACKOFF_BASE, config.retry_backoff_max)
        self.retry_at = 0.0  # monotonic; no pull before
        self.paused = False
        self.pulls = 0
        self.failures = 0

    def next_tick(self, now: float) -> float:
        """Periodic mode: seconds until the next grid point after ``now`` (wall clock); sets ``next_pull_at``."""
        interval = self.config.poll_interval
        k = math.floor((now - self.anchor) / interval) + 1
        self.next_pull_at = self.anchor + k * interval
        return max(0.0, self.next_pull_at - now)

    def room(self, in_flight: int, unpushed: int) -> int:
        """How many tasks the next pull may take (0: saturated)."""
        if unpushed >= self.config.max_unpushed:
            return 0
        return max(0, min(self.config.max_pull_batch, self.config.max_in_flight - in_flight))

    def pull(self, room: int, now: float) -> PullTaskIns | None:
        """The pull to send now (``now`` monotonic), or ``None``: one is outstanding, backing off, or no room."""
        if self.outstanding is not None or now < self.retry_at:
            return None
        self.paused = room <= 0
        if self.paused:
            return None
        self.request_id += 1
        self.outstanding = (self.request_id, now)
        self.pulls += 1
        wait = self.config.long_poll_wait if self.config.long_poll else 0.0
        return PullTaskIns(self.config.node_id, self.request_id, room, wait)

    def answered(self, request_id: int) -> None:
        """A batch arrived; if it answers the outstanding pull, the next may go."""
        if self.outstanding is not None and request_id == self.outstanding[0]:
            self.outstanding = None
            self.backoff.reset()
            self.retry_at = 0.0

    def failed(self, request_id: int | None, now: float) -> float | None:
        """The outstanding pull failed (``request_id`` None: whichever it is); seconds to back off, or ``None``."""
        if self.outstanding is None or (request_id is not None and request_id != self.outstanding[0]):
            return None
        self.outstanding = None
        self.failures += 1
        delay = self.backoff.failed()
        self.retry_at = now + delay
        return delay

    def lost(self, now: float) -> bool:
        """Whether the outstanding pull has had no answer for longer than it may take."""
        if self.outstanding is None:
            return False
        wait = self.config.long_poll_wait if self.config.long_poll else 0.0
        return now - self.outstanding[1] > wait + self.config.request_timeout


class Intake:
    """Validates and deduplicates pulled items; counts what it accepted, dropped and saw twice."""

    def __init__(self, config: NodeConfig) -> None:
        self.node_id = config.node_id
        self.max_content_bytes = config.max_content_bytes
        self.seen = RecentIds(config.dedupe_window)
        self.pulled = 0
        self.duplicates = 0
        self.bad_input = 0

    def accept(self, item: Any, now: float, stopping: bool) -> TaskIns | Answer | str | None:
        """The task to route (stamped ``pulled_at=now``), a ``Answer`` task, a reason to drop ``item``
        (no task id to answer: counted in ``bad_input``), or ``None`` for a duplicate."""
        problem = task_ins_problem(item)
        if problem is None and item.node_id != self.node_id:
            problem = f"task is addressed to node {item.node_id!r}, this is node {self.node_id!r}"
        if problem is None and len(item.payload) > self.max_content_bytes:
            problem = f"content of {len(item.payload)} bytes exceeds this node's limit of {self.max_content_bytes}"
        task_id = getattr(item, "task_id", None)
        answerable = isinstance(item, TaskIns) and isinstance(task_id, str) and bool(task_id)
        if answerable and not self.seen.add(task_id):
            self.duplicates += 1
            return None
        if problem is not None:
            if answerable:
                return Answer(item, ErrorKind.BAD_TASK, problem)
            self.bad_input += 1
            return problem
        self.pulled += 1
        task: TaskIns = item._copy_with({"pulled_at": now})
        if stopping:
            return Answer(task, ErrorKind.NODE_SHUTTING_DOWN, "the node is shutting down")
        return task

    def items(self, tasks: Any) -> Any:
        """A batch's items: ``tasks`` itself if it is a tuple or a list; else none (counted in ``bad_input``)."""
        if isinstance(tasks, (tuple, list)):
            return tasks
        self.bad_input += 1
        return ()
