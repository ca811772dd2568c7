"""The server link: how a node and a driver talk to a server, as messages.

A server is any actor that answers these requests. The node side (the
LeadClient and its Sender) needs two::

    PullTaskIns  ──▶ server ──▶ TaskInsBatch    up to max_tasks of this node's tasks;
                                                 with wait_s > 0 the server holds the
                                                 pull until a task exists (long-poll)
    PushTaskRes  ──▶ server ──▶ TaskResAck      results stored; the Sender drops them
    either       ──▶ server ──▶ LinkError       the request failed; the node backs off and retries

The driver side needs two more::

    SubmitTaskIns   ──▶ server ──▶ TaskInsAccepted
    CollectTaskRes  ──▶ server ──▶ TaskResBatch  results of this driver's tasks;
                                                 with wait_s > 0, held until one exists

Every request carries a ``request_id`` that its reply repeats, so a late
reply is recognised. ``EmbeddedServer`` implements all of them in the same
actor system; an adapter actor for another server (a Flower SuperLink) only
has to answer the node side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from .messages import NodeId, TaskRes

__all__ = [
    "CollectTaskRes",
    "GetServerStatus",
    "LinkError",
    "SetServerFault",
    "PullTaskIns",
    "PushTaskRes",
    "ServerStatus",
    "SubmitTaskIns",
    "TaskInsAccepted",
    "TaskInsBatch",
    "TaskResAck",
    "TaskResBatch",
]


@dataclass(frozen=True)
class PullTaskIns:
    """Node → server: give me up to ``max_tasks`` of my tasks, waiting up to ``wait_s``."""

    node_id: NodeId
    request_id: int
    max_tasks: int
    wait_s: float = 0.0


@dataclass(frozen=True, repr=False)
class TaskInsBatch:
    """Server → node: the answer to a ``PullTaskIns`` (possibly empty); may hold ``StopWorkload`` items."""

    request_id: int
    tasks: Tuple[Any, ...]


@dataclass(frozen=True, repr=False)
class PushTaskRes:
    """Node → server: store these results."""

    request_id: int
    results: Tuple[TaskRes, ...]


@dataclass(frozen=True)
class TaskResAck:
    """Server → node: the results of push ``request_id`` are stored."""

    request_id: int
    stored_at: float


@dataclass(frozen=True)
class LinkError:
    """Server → node: request ``request_id`` failed (the server is failing); retry later."""

    request_id: int
    message: str


@dataclass(frozen=True)
class SetServerFault:
    """Fault injection for the embedded server: how it treats node requests from now on.

    ``mode`` is ``None`` (healthy), ``"silent"`` (drops pulls and pushes
    unanswered, like an unreachable server) or ``"error"`` (answers them with
    ``LinkError``). Driver requests are always served.
    """

    mode: Optional[str] = None


@dataclass(frozen=True, repr=False)
class SubmitTaskIns:
    """Driver → server: queue these tasks for their nodes; results go to ``driver_id``.

    An item may also be ``(node_id, StopWorkload)``: the node gets it in order with its tasks.
    """

    driver_id: str
    request_id: int
    tasks: Tuple[Any, ...]


@dataclass(frozen=True)
class TaskInsAccepted:
    """Server → driver: which submitted tasks were queued and which were refused (id, reason)."""

    request_id: int
    accepted: Tuple[str, ...]
    rejected: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CollectTaskRes:
    """Driver → server: give me up to ``max_results`` of my results, waiting up to ``wait_s``."""

    driver_id: str
    request_id: int
    max_results: int = 100_000
    wait_s: float = 0.0


@dataclass(frozen=True, repr=False)
class TaskResBatch:
    """Server → driver: the answer to a ``CollectTaskRes`` (possibly empty)."""

    request_id: int
    results: Tuple[TaskRes, ...]


@dataclass(frozen=True)
class GetServerStatus:
    """Anyone → server: report counters."""

    request_id: int = 0


@dataclass(frozen=True)
class ServerStatus:
    """Server counters: tasks queued per node, results waiting per driver, totals."""

    request_id: int
    queued: Tuple[Tuple[NodeId, int], ...]
    waiting_results: Tuple[Tuple[str, int], ...]
    submitted: int
    pulled: int
    stored: int
    duplicates_dropped: int
    pid: int
    session_id: int
    last_error: Optional[str] = None


def _short_repr(self: object) -> str:
    items: Any = getattr(self, "tasks", None)
    if items is None:
        items = getattr(self, "results", ())
    return f"{type(self).__name__}(request={getattr(self, 'request_id', '?')}, {len(items)} items)"


for _cls in (TaskInsBatch, PushTaskRes, SubmitTaskIns, TaskResBatch):
    _cls.__repr__ = _short_repr  # type: ignore[method-assign]
