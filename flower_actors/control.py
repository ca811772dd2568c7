"""Messages that configure, query and stop a node, and those between its actors.

Public requests (an embedding program sends them to a ``LeadClient``)::

    StartLeadClient   ──▶ LeadClient ──▶ LeadClientStarted
    RegisterWorkload  ──▶ LeadClient ──▶ WorkloadRegistered
    StopWorkload      ──▶ LeadClient ──▶ WorkloadStopped  (a server may also send it in a TaskInsBatch)
    GetNodeStatus     ──▶ LeadClient ──▶ NodeStatus
    StopNode          ──▶ LeadClient ──▶ NodeStopped

The rest are internal: the LeadClient starts its Sender and WorkloadClients
with them, and they report back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from .config import AppSpec, NodeConfig
from .messages import NodeId, WorkloadId

__all__ = [
    "GetNodeStatus",
    "GetProcessInfo",
    "LeadClientStarted",
    "NodeStatus",
    "NodeStopped",
    "ProcessInfo",
    "RegisterWorkload",
    "StartLeadClient",
    "StopNode",
    "StopWorkload",
    "WorkloadRegistered",
    "WorkloadStopped",
]


@dataclass(frozen=True)
class StartLeadClient:
    """Configure a freshly created LeadClient and start pulling from ``server``."""

    config: NodeConfig
    server: Any
    """The server's ``ActorAddress``."""


@dataclass(frozen=True)
class LeadClientStarted:
    """The LeadClient is pulling; ``next_pull_at`` is when its next periodic pull fires."""

    node_id: NodeId
    pid: int
    session_id: int
    next_pull_at: float
    error: Optional[str] = None
    """Set when the LeadClient refused to start (then it is not pulling)."""


@dataclass(frozen=True)
class RegisterWorkload:
    """Serve ``workload_id`` with ``app`` from its next task on."""

    workload_id: WorkloadId
    app: AppSpec


@dataclass(frozen=True)
class WorkloadRegistered:
    """Answer to ``RegisterWorkload``; ``error`` says why it was refused."""

    workload_id: WorkloadId
    error: Optional[str] = None


@dataclass(frozen=True)
class StopWorkload:
    """Stop a workload's WorkloadClient: its running task finishes, its queued tasks get ``WorkloadStopped``.

    A later task of the workload starts a fresh WorkloadClient (with fresh state).
    """

    workload_id: WorkloadId


@dataclass(frozen=True)
class WorkloadStopped:
    """Answer to ``StopWorkload``; ``was_running`` is False if the workload had no WorkloadClient."""

    workload_id: WorkloadId
    was_running: bool


@dataclass(frozen=True)
class GetNodeStatus:
    """Ask a LeadClient for its ``NodeStatus``."""

    request_id: int = 0


@dataclass(frozen=True)
class NodeStatus:
    """A node's counters at one moment."""

    request_id: int
    node_id: NodeId
    workloads_live: int
    """WorkloadClients alive now."""
    workloads_created: int
    """WorkloadClients created since start (a restarted workload counts again)."""
    tasks_pulled: int
    tasks_in_flight: int
    """Forwarded and not yet confirmed stored by the server."""
    results_pushed: int
    errors: int
    """Results pushed that carry an error."""
    duplicates_dropped: int
    bad_input: int
    """Malformed items from the server that could not be answered."""
    pulls: int
    pull_failures: int
    """Pulls that failed or got no answer (each one backs off)."""
    next_pull_at: Optional[float]
    workloads_parked: int
    """Workloads with tasks waiting for a slot under ``max_workloads``."""
    workloads_stopped: int
    """WorkloadClients stopped (idle timeout, cap, ``StopWorkload``)."""
    deaths: int
    """WorkloadClients that died (crash or killed at a deadline)."""
    deadline_kills: int
    workloads_warm: int
    """Started WorkloadClients waiting in the warm pool for a new workload."""
    unpushed: int
    """Results waiting in the Sender, as last reported."""
    pulling_paused: bool
    """True while the node is saturated and does not pull."""
    handler_pids: Tuple[int, ...]
    """Processes of the live WorkloadClients."""
    pid: int
    session_id: int


@dataclass(frozen=True)
class StopNode:
    """Stop pulling, stop every WorkloadClient and the Sender, then answer ``NodeStopped``."""

    timeout_s: float = 5.0


@dataclass(frozen=True)
class NodeStopped:
    """The node stopped; counters at the end."""

    node_id: NodeId
    results_pushed: int
    unpushed: int


@dataclass(frozen=True)
class GetProcessInfo:
    """Ask any of our actors for its process id and session id."""


@dataclass(frozen=True)
class ProcessInfo:
    """An actor's process id and session id (all actors of a system share the session)."""

    pid: int
    session_id: int


# Internal: LeadClient <-> WorkloadClient / Sender.


@dataclass(frozen=True, repr=False)
class StartWorkloadClient:
    """LeadClient → new WorkloadClient: who you are and where results go."""

    workload_id: WorkloadId
    node_id: NodeId
    app: AppSpec
    sender: Any
    lead: Any
    incarnation: int = 0
    """Unique per WorkloadClient the LeadClient created; echoed in its reports."""
    board_slot: int = -1
    """Its slot on the LeadClient's ``TaskBoard`` (-1: none)."""
    spill_path: Optional[str] = None
    """Where it keeps results that have not left its process yet (``spill``); ``None``: nowhere."""
    tasks: Tuple[Any, ...] = ()
    """Its first tasks (a warm process gets them with its start)."""

    def __repr__(self) -> str:  # short: Thespian formats every message it sends
        return f"StartWorkloadClient(workload={self.workload_id!r}, incarnation={self.incarnation}, {len(self.tasks)} tasks)"


@dataclass(frozen=True, repr=False)
class RunTasks:
    """LeadClient → WorkloadClient: run these tasks, in order, after those it already holds."""

    tasks: Tuple[Any, ...]

    def __repr__(self) -> str:  # short: Thespian formats every message it sends
        return f"RunTasks({len(self.tasks)} tasks)"


@dataclass(frozen=True, repr=False)
class TaskResGroup:
    """WorkloadClient → Sender: results finished back to back, in one message."""

    results: Tuple[Any, ...]

    def __repr__(self) -> str:  # short: Thespian formats every message it sends
        return f"TaskResGroup({len(self.results)} results)"


@dataclass(frozen=True)
class PrewarmWorkloadClient:
    """LeadClient → WorkloadClient for the warm pool: report your pid now; import ``module`` ahead."""

    incarnation: int
    board_slot: int
    lead: Any
    module: Optional[str] = None
    """The node's default app module, imported ahead so a first task does not wait for it."""


@dataclass(frozen=True)
class WorkloadClientStarted:
    """WorkloadClient → LeadClient: running in process ``pid`` (sent before the app is loaded).

    ``workload_id`` is ``None`` for a process of the warm pool, not yet assigned.
    """

    workload_id: Optional[WorkloadId]
    pid: int
    incarnation: int = 0


@dataclass(frozen=True)
class StartSender:
    """LeadClient → new Sender: push to ``server``, report to ``lead``."""

    node_id: NodeId
    server: Any
    lead: Any
    request_timeout: float = 5.0
    retry_backoff_max: float = 5.0


@dataclass(frozen=True, repr=False)
class TasksDone:
    """WorkloadClient → LeadClient: these tasks finished and their results went to the Sender."""

    workload_id: WorkloadId
    incarnation: int
    ins_ids: Tuple[str, ...]
    errors: int = 0

    def __repr__(self) -> str:  # short: Thespian formats every message it sends
        return f"TasksDone(workload={self.workload_id!r}, {len(self.ins_ids)} tasks)"


@dataclass(frozen=True, repr=False)
class SenderProgress:
    """Sender → LeadClient: totals, and the ``TaskIns`` ids whose results it took since its last report."""

    pushed: int
    errors: int
    buffered: int
    received: Tuple[str, ...] = ()

    def __repr__(self) -> str:  # short: Thespian formats every message it sends
        return f"SenderProgress(pushed={self.pushed}, buffered={self.buffered}, {len(self.received)} received)"


@dataclass(frozen=True)
class FlushSender:
    """LeadClient → Sender: answer ``SenderFlushed`` once nothing is left to push (or at the deadline)."""

    deadline: float


@dataclass(frozen=True)
class SenderFlushed:
    """Sender → LeadClient: pushed everything (``unpushed`` is what was left at the deadline)."""

    pushed: int
    unpushed: int
