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
reply is recognised. ``NodeLink`` and ``DriverLink`` state these contracts
as typed protocols of the handlers a server actor has (``SafeActor``
dispatches ``receive_<MessageClass>``); ``tests/link`` runs one contract
suite on every implementation. ``EmbeddedServer`` implements both in the
same actor system; an adapter for another server (a Flower SuperLink) only
has to implement ``NodeLink``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..messages import NodeId, ShortRepr, TaskRes
from ..rows import CarriesRows

__all__ = [
    "CollectTaskRes",
    "DriverLink",
    "LinkError",
    "NodeLink",
    "PullTaskIns",
    "PushTaskRes",
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
class TaskInsBatch(CarriesRows, ShortRepr):
    """Server → node: the answer to a ``PullTaskIns`` (possibly empty); may hold ``StopWorkload`` items."""

    ROWS = "tasks"
    request_id: int
    tasks: tuple[Any, ...]


@dataclass(frozen=True, repr=False)
class PushTaskRes(CarriesRows, ShortRepr):
    """Node → server: store these results."""

    ROWS = "results"
    request_id: int
    results: tuple[TaskRes, ...]


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


@dataclass(frozen=True, repr=False)
class SubmitTaskIns(CarriesRows, ShortRepr):
    """Driver → server: queue these tasks for their nodes; results go to ``driver_id``.

    An item may also be ``(node_id, StopWorkload)``: the node gets it in order with its tasks.
    """

    ROWS = "tasks"
    driver_id: str
    request_id: int
    tasks: tuple[Any, ...]


@dataclass(frozen=True)
class TaskInsAccepted:
    """Server → driver: which submitted tasks were queued and which were refused (id, reason)."""

    request_id: int
    accepted: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CollectTaskRes:
    """Driver → server: give me up to ``max_results`` of my results, waiting up to ``wait_s``."""

    driver_id: str
    request_id: int
    max_results: int = 100_000
    wait_s: float = 0.0


@dataclass(frozen=True, repr=False)
class TaskResBatch(CarriesRows, ShortRepr):
    """Server → driver: the answer to a ``CollectTaskRes`` (possibly empty)."""

    ROWS = "results"
    request_id: int
    results: tuple[TaskRes, ...]


@runtime_checkable
class NodeLink(Protocol):
    """What a server answers on the node side (a LeadClient pulls, its Sender pushes).

    - ``PullTaskIns``: answer one ``TaskInsBatch`` with the same
      ``request_id``, holding at most ``max_tasks`` of that node's items (its
      ``TaskIns`` and any ``StopWorkload`` in order), each item handed out
      once; with ``wait_s > 0`` answer as soon as an item exists or after
      about ``wait_s`` with an empty batch; a newer pull of the same node
      answers the older one with an empty batch. Or ``LinkError``.
    - ``PushTaskRes``: store the results, then answer ``TaskResAck`` with the
      same ``request_id``; a result pushed again (same ``ins_id``) is
      acknowledged and not stored twice. Or ``LinkError``; never store a
      result without acknowledging it in the end.
    """

    def receive_PullTaskIns(self, message: PullTaskIns, sender: Any) -> None:
        """Answer with a ``TaskInsBatch`` (or ``LinkError``)."""

    def receive_PushTaskRes(self, message: PushTaskRes, sender: Any) -> None:
        """Answer with a ``TaskResAck`` (or ``LinkError``)."""


@runtime_checkable
class DriverLink(Protocol):
    """What a server answers on the driver side.

    - ``SubmitTaskIns``: queue each ``TaskIns`` (and ``(node_id,
      StopWorkload)`` item) for its node, in order; answer
      ``TaskInsAccepted`` with the same ``request_id``, the ids queued and
      ``(id, reason)`` for each refused (a repeated id is refused).
    - ``CollectTaskRes``: answer ``TaskResBatch`` with up to ``max_results``
      results of this driver's own tasks, each handed out once; with
      ``wait_s > 0`` as soon as one exists or after about ``wait_s``.
    """

    def receive_SubmitTaskIns(self, message: SubmitTaskIns, sender: Any) -> None:
        """Answer with a ``TaskInsAccepted``."""

    def receive_CollectTaskRes(self, message: CollectTaskRes, sender: Any) -> None:
        """Answer with a ``TaskResBatch``."""
