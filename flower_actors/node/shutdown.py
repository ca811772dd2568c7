"""The node's stop: who asked, until when running tasks may finish, and the one reply everyone gets."""

from __future__ import annotations

from typing import Any

from ..control import NodeStopped

__all__ = ["DEFAULT_STOP_TIMEOUT", "ORPHAN_GRACE", "SENDER_FLUSH_TIMEOUT", "Shutdown"]

DEFAULT_STOP_TIMEOUT = 5.0
"""How long running tasks may finish when ``StopNode.timeout_s`` is not a valid number."""
ORPHAN_GRACE = 0.5
"""After a WorkloadClient's process ends, how long its results may still reach the Sender before
the tasks the Sender never reported are answered with an error."""
SENDER_FLUSH_TIMEOUT = 5.0
"""How long a stopping node waits for the Sender to push what it holds."""


class Shutdown:
    """``StopNode``: stop pulling, let running tasks finish until ``deadline``, answer the rest, flush, reply."""

    def __init__(self) -> None:
        self.deadline: float | None = None  # wall clock; None: not stopping
        self.waiters: list[Any] = []  # who asked (every one gets the reply)
        self.draining_done = False  # every WorkloadClient was stopped; the Sender is being flushed
        self.reply: NodeStopped | None = None

    @property
    def active(self) -> bool:
        """A stop was asked for (the node no longer pulls or accepts tasks)."""
        return self.deadline is not None

    def request(self, who: Any, timeout: Any, now: float) -> bool:
        """Record a ``StopNode`` from ``who``; True if it starts the stop now (the first request)."""
        self.waiters.append(who)
        if self.deadline is not None:
            return False
        valid = isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout >= 0
        self.deadline = now + (timeout if valid else DEFAULT_STOP_TIMEOUT)
        return True

    def overdue(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    def begin_draining(self) -> bool:
        """True the first time: stop every process and flush the Sender now."""
        if self.draining_done:
            return False
        self.draining_done = True
        return True

    def finished(self, node_id: Any, pushed: int, unpushed: int) -> list[Any]:
        """The Sender flushed: the reply is made; return who gets it (empty if it was sent already)."""
        if self.reply is not None or self.deadline is None:
            return []
        self.reply = NodeStopped(node_id, pushed, unpushed)
        waiters, self.waiters = self.waiters, []
        return waiters
