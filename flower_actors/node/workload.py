"""What a node knows about one workload and one WorkloadClient process: records, phases, timer payloads."""

from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..config import AppSpec
from ..errors import ErrorKind
from ..messages import TaskIns, TaskRes, WorkloadId

__all__ = [
    "STOP",
    "Answer",
    "CheckDeadline",
    "Decision",
    "Deliver",
    "Exit",
    "Flush",
    "Job",
    "Kill",
    "Later",
    "OrderedStop",
    "OrphansDue",
    "Phase",
    "Place",
    "Process",
    "RestartDue",
    "Spawn",
    "Start",
    "Unpark",
    "Workload",
    "tasks_of",
]


class Phase(enum.Enum):
    """Where a workload's WorkloadClient is in its life."""

    PARKED = "parked"
    """No process: waits for a slot under ``max_workloads``."""
    HELD = "held"
    """No process: waits out a restart delay after its processes died without running a task."""
    QUEUED = "queued"
    """Waits for a spawning turn to fork its process."""
    ASSIGNED = "assigned"
    """Has a process (warm, or just forked) that has not been sent its start yet; start and first tasks go together."""
    STARTING = "starting"
    """Its process was started and has not reported its pid yet: it gets more tasks once it does."""
    LIVE = "live"
    """Its process runs, pid known."""
    RETIRING = "retiring"
    """Its process was asked to exit (stopped, evicted, idle, killed); the workload itself is forgotten."""


@dataclass(eq=False)
class Process:
    """One WorkloadClient process: warm (no workload yet) or a workload's."""

    incarnation: int
    """Unique per process this LeadClient started; echoed in its reports and in the Spawner's exit notice."""
    slot: int
    """Its slot on the task board (-1: none)."""
    pid: int | None = None
    """``None`` until it reports."""
    address: Any = None
    """Its Thespian ``ActorAddress``; ``None`` until it reports (the Spawner created it)."""


@dataclass(frozen=True)
class OrderedStop:
    """A ``StopWorkload`` from the server, kept in the workload's queue in order with its tasks."""


STOP = OrderedStop()


@dataclass(frozen=True)
class Answer:
    """Decision: answer ``task`` with an error result of ``kind``."""

    task: TaskIns
    kind: str
    message: str


@dataclass(frozen=True)
class Exit:
    """Decision: ask ``process`` to exit once its running handler returns."""

    process: Process


@dataclass(frozen=True)
class Kill:
    """Decision: SIGKILL ``process`` (a stuck handler never reads an exit request)."""

    process: Process


@dataclass(frozen=True)
class Start:
    """Decision: start ``process`` (through the Spawner) with ``message`` as its first message."""

    process: Process
    message: object


@dataclass(frozen=True)
class Send:
    """Decision: send ``message`` to the node's actor at ``address`` (a WorkloadClient)."""

    address: Any
    message: object


@dataclass(frozen=True)
class Deliver:
    """Decision: send these results (read back from a spill file) to the Sender."""

    results: tuple[TaskRes, ...]


@dataclass(frozen=True)
class Later:
    """Decision: deliver ``payload`` to the LeadClient as a timer after ``delay`` seconds."""

    delay: float
    payload: object


@dataclass(frozen=True)
class Place:
    """Decision: give ``workload`` a process (or park it under the cap) and send it its tasks."""

    workload: Workload


@dataclass(frozen=True)
class Unpark:
    """Decision: a slot may have freed under ``max_workloads``: give parked workloads a process."""


@dataclass(frozen=True)
class Spawn:
    """Decision: take a spawning turn (a process slot freed, or the warm pool needs one)."""


@dataclass(frozen=True)
class Flush:
    """Decision: ask the Sender to push what it holds, then report (the node's last step)."""


Decision = Answer | Exit | Kill | Start | Send | Deliver | Later | Place | Unpark | Spawn | Flush
"""What a part asks the LeadClient to do."""


def tasks_of(items: Any) -> list[TaskIns]:
    """The tasks among queue items (ordered stops left out)."""
    return [item for item in items if isinstance(item, TaskIns)]


@dataclass(eq=False)
class Workload:
    """One workload on this node: its app, its queue, and the process serving it now."""

    workload_id: WorkloadId
    app: AppSpec
    phase: Phase = Phase.PARKED
    process: Process | None = None
    queue: deque[TaskIns | OrderedStop] = field(default_factory=deque)
    """Tasks waiting at the LeadClient, and the ordered stops between them."""
    stops: int = 0
    """How many ordered stops ``queue`` holds."""
    running: dict[str, tuple[int, TaskIns]] = field(default_factory=dict)
    """Tasks its process holds, in order: task id -> (sequence number in that process, task)."""
    sent: int = 0
    """Tasks sent to its current process (the sequence number of the last one)."""
    last_active: float = field(default_factory=time.monotonic)
    fed_at: float = 0.0
    """When tasks were last sent to it (wall clock)."""
    idle_mark: tuple[int, float] | None = None
    """(tasks finished, when first seen) while its process looked idle with tasks it has not started."""
    watched: bool = False
    """A deadline check of its process is pending."""
    report_asked: bool = False
    """Its process was asked for ``TasksDone`` (``RunTasks.report``, ``ReportTasks``) and has not sent it yet."""
    held: int = 0
    """The token of its restart timer while ``HELD``."""
    stop_reason: tuple[str, str] = (ErrorKind.WORKLOAD_STOPPED, "the workload was stopped")
    """What tasks it holds but never started get once its process was told to exit."""

    @property
    def idle(self) -> bool:
        """Nothing running and no task waiting."""
        return not self.running and len(self.queue) == self.stops

    @property
    def queued(self) -> int:
        """Tasks waiting at the LeadClient (ordered stops not counted)."""
        return len(self.queue) - self.stops

    @property
    def incarnation(self) -> int:
        """Its process's incarnation (0: none)."""
        return self.process.incarnation if self.process is not None else 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def has_process(self) -> bool:
        """It has, or is getting, a process (counts as live under ``max_workloads``)."""
        return self.phase in (Phase.QUEUED, Phase.ASSIGNED, Phase.STARTING, Phase.LIVE)

    def append(self, item: TaskIns | OrderedStop) -> None:
        self.queue.append(item)
        self.stops += item is STOP

    def take_queue(self) -> list[TaskIns | OrderedStop]:
        """Empty the queue and return what it held."""
        items = list(self.queue)
        self.queue.clear()
        self.stops = 0
        return items

    def extend_queue(self, items: list[TaskIns | OrderedStop]) -> None:
        for item in items:
            self.append(item)


class Job(enum.Enum):
    """Timer payloads of the LeadClient's own jobs."""

    PULL = "pull"
    """The periodic pull tick."""
    RETRY = "retry"
    """Long-poll: pull again after a back-off."""
    HOUSEKEEPING = "housekeeping"
    """Lost pulls, unreported deaths, idle workloads, stop deadlines."""
    SPAWN = "spawn"
    """A spawning turn."""
    STATUS = "status"
    """Answer status requests still waiting for the Sender."""
    FLUSH = "flush"
    """A stopping node flushes its Sender."""
    READY = "ready"
    """Answer ``StartLeadClient`` even if the warm pool is not full yet."""


@dataclass(frozen=True)
class CheckDeadline:
    """Timer: check the task a workload's process runs against its deadline."""

    workload_id: WorkloadId
    incarnation: int


@dataclass(frozen=True)
class OrphansDue:
    """Timer: a process ended a while ago; answer what it ran whose result never reached the Sender."""

    incarnation: int


@dataclass(frozen=True)
class RestartDue:
    """Timer: a workload's restart delay is over."""

    workload_id: WorkloadId
    token: int
