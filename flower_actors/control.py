"""Messages that configure, query and stop a node, and those between its actors.

Public requests (an embedding program sends them to a ``LeadClient``)::

    StartLeadClient   ──▶ LeadClient ──▶ LeadClientStarted
    RegisterWorkload  ──▶ LeadClient ──▶ WorkloadRegistered
    StopWorkload      ──▶ LeadClient ──▶ WorkloadStopped  (a server may also send it in a TaskInsBatch)
    GetNodeStatus     ──▶ LeadClient ──▶ NodeStatus
    StopNode          ──▶ LeadClient ──▶ NodeStopped

Messages between a node's own actors are in ``flower_actors.node.wire``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import AppSpec, NodeConfig
from .messages import NodeId, WorkloadId

__all__ = [
    "GetNodeStatus",
    "LeadClientStarted",
    "NodeStatus",
    "NodeStopped",
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

    def refusal(self) -> str | None:
        """Why a LeadClient cannot start with this, or ``None``."""
        from thespian.actors import ActorAddress

        if not isinstance(self.config, NodeConfig):
            return f"config must be a NodeConfig, got {type(self.config).__name__}"
        if not isinstance(self.server, ActorAddress):
            return f"server must be an ActorAddress, got {type(self.server).__name__}"
        return None


@dataclass(frozen=True)
class LeadClientStarted:
    """The LeadClient is pulling; ``next_pull_at`` is when its next periodic pull fires."""

    node_id: NodeId
    pid: int
    session_id: int
    next_pull_at: float
    error: str | None = None
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
    error: str | None = None


@dataclass(frozen=True)
class StopWorkload:
    """Stop a workload's WorkloadClient; a later task of the workload starts a fresh one (with fresh state).

    Sent by a program to a LeadClient: the task running now finishes, the
    tasks not started yet get ``WorkloadStopped``. Sent by a server among a
    node's tasks (``Driver.stop_workload``): it is ordered with them, so the
    tasks before it finish in the old WorkloadClient and those after it run
    in a fresh one, whatever phase the old one is in.
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
    """A node's counters at one moment. Each is counted in one place.

    A driver that received every result of its tasks from a node sees
    ``results_pushed`` results, ``errors`` of them with an error (counts are
    the Sender's, read after the status request arrived).
    """

    request_id: int
    """The ``GetNodeStatus.request_id`` this answers."""
    node_id: NodeId
    """The node."""
    workloads_live: int
    """WorkloadClients that have, or are getting, a process now (warm ones not counted)."""
    workloads_created: int
    """WorkloadClients given to workloads since start (a restarted workload counts again)."""
    tasks_pulled: int
    """``TaskIns`` accepted from the server: well-formed, for this node, not a duplicate."""
    tasks_in_flight: int
    """Accepted tasks not finished yet: waiting at the LeadClient or held by a WorkloadClient."""
    results_pushed: int
    """Results the server acknowledged (each task's one answer; second answers are dropped before)."""
    errors: int
    """Of ``results_pushed``, those that carry an error (any ``ErrorKind``)."""
    duplicates_dropped: int
    """Tasks pulled again with an id seen before (within ``dedupe_window``); handled once."""
    bad_input: int
    """Malformed items from the server that had no task id to answer; logged and dropped."""
    pulls: int
    """Pull requests sent to the server."""
    pull_failures: int
    """Pulls that failed or got no answer (each one backs off)."""
    next_pull_at: float | None
    """When the next periodic pull fires (wall clock); ``None`` in long-poll mode or when stopping."""
    workloads_parked: int
    """Workloads with tasks waiting for a slot under ``max_workloads``."""
    workloads_stopped: int
    """WorkloadClients stopped on purpose (idle timeout, cap, ``StopWorkload``)."""
    deaths: int
    """WorkloadClient processes that ended without being asked to: exits and crashes (before or while loading
    the app too, warm ones included) and deadline kills."""
    deadline_kills: int
    """Of ``deaths``, processes killed because a handler ran past its deadline (one ``DeadlineExceeded`` each)."""
    workloads_warm: int
    """Started WorkloadClients waiting in the warm pool for a new workload."""
    unpushed: int
    """Results waiting in the Sender, as last reported."""
    pulling_paused: bool
    """True while the node is saturated and does not pull."""
    handler_pids: tuple[int, ...]
    """Processes of the live WorkloadClients."""
    pid: int
    """The LeadClient's process."""
    session_id: int
    """The actor system's session (every process of it shares it)."""


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
