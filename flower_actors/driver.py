"""``Driver``: the driver side of the embedded server, for a program outside the actor system.

A driver submits ``TaskIns`` and collects the ``TaskRes`` of its own tasks
(the server routes each result to the driver that submitted its task).
Each ``Driver`` talks through an endpoint of its own, so drivers in several
threads never see each other's replies: use one ``Driver`` per thread
(several drivers may share one thread). ``close()`` (or ``with``) releases
the endpoint; ``LocalFederation.stop`` closes the drivers it made.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from thespian.actors import ActorAddress, ActorSystem

from .control import StopWorkload
from .errors import NodeTimeout, TaskRejected
from .link.protocol import CollectTaskRes, SubmitTaskIns, TaskInsAccepted, TaskResBatch
from .messages import NodeId, TaskIns, TaskRes, WorkloadId, take_batch
from .runtime.system import close_endpoint, private_endpoint

__all__ = ["Driver", "ask_for"]

_ids = itertools.count(1)


def ask_for(
    system: ActorSystem,
    address: ActorAddress,
    message: Any,
    accept: Callable[[Any], bool],
    timeout: float,
    on_other: Callable[[Any], None] | None = None,
) -> Any:
    """Send ``message`` and wait for a reply that ``accept`` takes; raises ``NodeTimeout``.

    Thespian's ``ask`` returns whatever reaches this external address first,
    which may be a late answer to an earlier request: such replies are given
    to ``on_other`` (or dropped) and the wait goes on.
    """
    deadline = time.monotonic() + timeout
    reply = system.ask(address, message, timeout)
    while not accept(reply):
        if reply is not None and on_other is not None:
            on_other(reply)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NodeTimeout(f"no answer to {type(message).__name__} within {timeout} s")
        reply = system.listen(remaining)
    return reply


class Driver:
    """Submit tasks to a server and collect their results."""

    def __init__(
        self, system: ActorSystem, server: ActorAddress, driver_id: str | None = None, timeout: float = 30.0
    ) -> None:
        self.system = system
        self.server = server
        self.driver_id = driver_id or f"driver-{uuid.uuid4().hex[:12]}"
        self.timeout = timeout
        self._early: list[TaskRes] = []  # results that arrived in a reply meant for an earlier request
        self._endpoint: ActorSystem | None = private_endpoint(system)
        self._lock = threading.Lock()  # a Driver shared by threads by mistake still gets its replies right

    def close(self) -> None:
        """Release this driver's endpoint; later calls raise ``RuntimeError``. Safe to call twice."""
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            close_endpoint(endpoint)

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def submit(self, tasks: Iterable[TaskIns]) -> list[str]:
        """Queue ``tasks`` on the server; return their ids.

        Raises ``TaskRejected`` if the server refused any (the rest are queued).
        """
        pending = deque(tasks)
        accepted: list[str] = []
        rejected: list[tuple[str, str]] = []
        while pending:  # in messages of at most BATCH_BYTES of content each, in order
            batch = take_batch(pending, len(pending))
            request_id = next(_ids)
            reply = self._request(
                SubmitTaskIns(self.driver_id, request_id, batch), TaskInsAccepted, request_id, self.timeout
            )
            accepted.extend(reply.accepted)
            rejected.extend((str(i), str(why)) for i, why in reply.rejected)
        if rejected:
            raise TaskRejected(accepted, rejected)
        return accepted

    def submit_task(
        self,
        workload_id: WorkloadId,
        content: Any,
        *,
        node_id: NodeId = 0,
        message_type: str = "",
        deadline_s: float | None = None,
    ) -> str:
        """Create and queue one task; return its id."""
        task = TaskIns.create(workload_id, content, node_id=node_id, message_type=message_type, deadline_s=deadline_s)
        return self.submit([task])[0]

    def stop_workload(self, workload_id: WorkloadId, node_id: NodeId = 0) -> None:
        """Tell ``node_id`` (through the server, in order with its tasks) to stop ``workload_id``."""
        self.submit([(node_id, StopWorkload(workload_id))])  # type: ignore[list-item]

    def collect(self, wait: float = 0.0, max_results: int = 100_000) -> list[TaskRes]:
        """Results of this driver's tasks that arrived since the last call.

        With ``wait`` > 0 the server holds the request until a result exists
        or ``wait`` seconds passed.
        """
        results, self._early = self._early, []
        if results and wait > 0:
            wait = 0.0
        request_id = next(_ids)
        reply = self._request(
            CollectTaskRes(self.driver_id, request_id, max_results, wait), TaskResBatch, request_id, wait + self.timeout
        )
        results.extend(reply.results)
        return results

    def wait_for(self, task_ids: Iterable[str], timeout: float) -> dict[str, TaskRes]:
        """Collect until every task in ``task_ids`` has a result; return them by task id.

        Results of other tasks that arrive meanwhile are kept for the next
        ``collect``. Raises ``NodeTimeout`` if some are still missing after ``timeout``.
        """
        wanted = set(task_ids)
        found: dict[str, TaskRes] = {}
        others: list[TaskRes] = []
        deadline = time.monotonic() + timeout
        while len(found) < len(wanted):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._early = others + self._early
                raise NodeTimeout(
                    f"{len(wanted) - len(found)} of {len(wanted)} task(s) have no result after {timeout} s"
                )
            for result in self.collect(wait=min(remaining, 1.0)):
                if result.ins_id in wanted:
                    found[result.ins_id] = result
                else:
                    others.append(result)
        self._early = others + self._early
        return found

    def run(self, tasks: Sequence[TaskIns], timeout: float) -> list[TaskRes]:
        """Submit ``tasks`` and wait for all their results; return them in task order."""
        ids = self.submit(tasks)
        found = self.wait_for(ids, timeout)
        return [found[i] for i in ids]

    def _request(self, message: Any, expected: Any, request_id: int, timeout: float) -> Any:
        def keep_late_results(reply: Any) -> None:  # a late answer to an earlier collect
            if isinstance(reply, TaskResBatch):
                self._early.extend(reply.results)

        with self._lock:
            if self._endpoint is None:
                raise RuntimeError(f"driver {self.driver_id} is closed")
            return ask_for(
                self._endpoint,
                self.server,
                message,
                lambda reply: isinstance(reply, expected) and reply.request_id == request_id,
                timeout,
                keep_late_results,
            )
