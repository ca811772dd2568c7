"""Messages between a node's own actors: LeadClient, Spawner, WorkloadClients and Sender.

Nothing outside a node sends or reads these; the public requests of a node
are in ``flower_actors.control``, the server link's in ``flower_actors.link``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import AppSpec
from ..messages import NodeId, ShortRepr, TaskIns, TaskRes, WorkloadId
from ..rows import CarriesRows

__all__ = [
    "LONG_HANDLER",
    "AppImported",
    "FlushSender",
    "ForwardToChild",
    "PrewarmWorkloadClient",
    "ReportProgress",
    "ReportTasks",
    "RunTasks",
    "SenderFlushed",
    "SenderProgress",
    "SpawnTurnDone",
    "SpawnWorkloadClients",
    "StartSender",
    "StartWorkloadClient",
    "TaskResGroup",
    "TasksDone",
    "WorkloadClientExited",
    "WorkloadClientStarted",
]


LONG_HANDLER = 0.005
"""A WorkloadClient whose handler has run longer than this gets its next tasks when it reports, not now:
a message to a process inside a handler holds one of the LeadClient's 20 transmit slots until it ends. A
slice that ran this long therefore always reports (``TasksDone``), asked or not."""


@dataclass(frozen=True, repr=False)
class StartWorkloadClient(CarriesRows, ShortRepr):
    """LeadClient → new WorkloadClient: who you are, where results go, and your first tasks."""

    ROWS = "tasks"
    workload_id: WorkloadId
    node_id: NodeId
    app: AppSpec
    sender: Any
    lead: Any
    incarnation: int = 0
    """Unique per WorkloadClient the LeadClient created; echoed in its reports."""
    board_slot: int = -1
    """Its slot on the LeadClient's ``TaskBoard`` (-1: none)."""
    spill_path: str | None = None
    """Where it keeps results that have not left its process yet (``spill``); ``None``: nowhere."""
    tasks: tuple[TaskIns, ...] = ()
    """Its first tasks (start and first tasks travel in one message)."""
    max_result_bytes: int = 64 * 1024 * 1024
    """Largest pickled result it sends (the node's ``max_content_bytes``); a larger one becomes an error."""
    share_import: bool = False
    """Whether to tell the LeadClient (``TasksDone.imported``) that it imported the app's module itself."""
    report: bool = True
    """Whether to send ``TasksDone`` once these tasks finished (see ``RunTasks.report``)."""
    announced: bool = False
    """Whether the Spawner told the LeadClient its address (``SpawnTurnDone.addresses``): no
    ``WorkloadClientStarted`` then."""


@dataclass(frozen=True, repr=False)
class RunTasks(CarriesRows, ShortRepr):
    """LeadClient → WorkloadClient: run these tasks, in order, after those it already holds."""

    ROWS = "tasks"
    tasks: tuple[TaskIns, ...]
    report: bool = True
    """Whether to send ``TasksDone`` after each slice until it holds no task. Without it, the LeadClient reads
    what finished on the ``TaskBoard`` when it needs to; a WorkloadClient without a board slot always reports."""


@dataclass(frozen=True)
class ReportTasks:
    """LeadClient → WorkloadClient: send ``TasksDone`` after each slice until you hold no task (at once if you
    hold none): the LeadClient holds more for you and needs to know when you have room."""


@dataclass(frozen=True, repr=False)
class TaskResGroup(CarriesRows, ShortRepr):
    """WorkloadClient → Sender: results finished back to back, in one message."""

    ROWS = "results"
    results: tuple[TaskRes, ...]


@dataclass(frozen=True)
class PrewarmWorkloadClient:
    """LeadClient → WorkloadClient for the warm pool: report your pid now; import ``module`` ahead."""

    incarnation: int
    board_slot: int
    lead: Any
    module: str | None = None
    """The node's default app module, imported ahead so a first task does not wait for it."""
    share_import: bool = False
    """Whether to tell the LeadClient (``AppImported``) once ``module`` imported cleanly."""


@dataclass(frozen=True)
class WorkloadClientStarted:
    """WorkloadClient → LeadClient: running in process ``pid``.

    ``workload_id`` is ``None`` for a process of the warm pool, not yet assigned.
    """

    workload_id: WorkloadId | None
    pid: int
    incarnation: int = 0


@dataclass(frozen=True)
class AppImported:
    """Warm WorkloadClient → LeadClient: ``module`` imported cleanly ahead of any workload.

    With ``NodeConfig.share_imports`` the Spawner then imports it too, before
    the first burst of new workloads forks its processes (a WorkloadClient that
    imports for its workload says so in its first ``TasksDone`` instead).
    """

    module: str


@dataclass(frozen=True, repr=False)
class SpawnWorkloadClients(ShortRepr):
    """LeadClient → Spawner: start a WorkloadClient per item and send it the item's first message.

    Each item is ``(incarnation, first message)``: a ``StartWorkloadClient``
    (with its first tasks) or a ``PrewarmWorkloadClient``.
    """

    starts: tuple[tuple[int, object], ...]
    imports: tuple[str, ...] = ()
    """Modules to import first (each imported by a WorkloadClient of this node before): its children share them."""


@dataclass(frozen=True)
class SpawnTurnDone:
    """Spawner → LeadClient: the processes of a ``SpawnWorkloadClients`` are forked; the next turn may come.

    ``pids`` are ``(incarnation, pid)``: a process that dies before its own report reaches the LeadClient (its
    first message travels in its fork, so it may run, and crash, before the Spawner hears it connect, and
    then Thespian sends no exit notice) is still found by its pid.
    """

    pids: tuple[tuple[int, int], ...] = ()
    addresses: tuple[tuple[int, Any], ...] = ()
    """``(incarnation, address)`` of the new processes whose address was known at the fork
    (``runtime.listen_ahead``); these do not report ``WorkloadClientStarted``."""


@dataclass(frozen=True)
class ForwardToChild:
    """LeadClient → Spawner: pass ``message`` on to the WorkloadClient of ``incarnation`` (its address is not
    known to the LeadClient before the process reports)."""

    incarnation: int
    message: object


@dataclass(frozen=True)
class WorkloadClientExited:
    """Spawner → LeadClient: the WorkloadClient process of ``incarnation`` has ended."""

    incarnation: int


@dataclass(frozen=True, repr=False)
class TasksDone(ShortRepr):
    """WorkloadClient → LeadClient: these tasks finished and their results went to the Sender."""

    workload_id: WorkloadId
    incarnation: int
    ins_ids: tuple[str, ...]
    imported: str = ""
    """The app module this process imported (first report after it did, when asked to); empty otherwise."""


@dataclass(frozen=True)
class StartSender:
    """LeadClient → new Sender: push to ``server``, report to ``lead``."""

    node_id: NodeId
    server: Any
    lead: Any
    request_timeout: float = 5.0
    retry_backoff_max: float = 5.0
    max_unpushed: int = 0
    """The LeadClient pauses pulling while the Sender holds this many results: reports then go at once."""


@dataclass(frozen=True)
class ReportProgress:
    """LeadClient → Sender: send a ``SenderProgress`` now (a status request waits for it)."""

    seq: int
    """Echoed in every ``SenderProgress`` from now on, so the LeadClient knows a report is newer than its ask."""


@dataclass(frozen=True, repr=False)
class SenderProgress(ShortRepr):
    """Sender → LeadClient: totals, and the ``TaskIns`` ids whose results it took since its last report."""

    pushed: int
    """Results the server acknowledged."""
    errors: int
    """Of ``pushed``, those carrying an error."""
    buffered: int
    """Results it holds that the server has not acknowledged (waiting or in a push)."""
    received: tuple[str, ...] = ()
    pushing: int = 0
    """Results in pushes the server has not acknowledged yet (0: ``pushed`` and ``errors`` are final for now)."""
    report_seq: int = 0
    """The ``ReportProgress.seq`` the Sender had seen when it sent this."""


@dataclass(frozen=True)
class FlushSender:
    """LeadClient → Sender: answer ``SenderFlushed`` once nothing is left to push (or at the deadline)."""

    deadline: float


@dataclass(frozen=True)
class SenderFlushed:
    """Sender → LeadClient: pushed everything (``unpushed`` is what was left at the deadline)."""

    pushed: int
    unpushed: int
