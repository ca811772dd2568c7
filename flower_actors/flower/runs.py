"""``RunBook``: what the link knows of runs and of the messages that still owe a reply (no I/O, no flwr).

Every pulled message is recorded here until its reply is pushed or its run
ends, so the link can always answer it: with the ClientApp's reply, or with
an error reply built from the message's metadata when its process died,
passed its deadline or the node stopped first.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ErrorKind
from ..messages import TaskError
from .wire import RunInfo

__all__ = ["Pending", "RunBook", "error_code_for"]

CRASH_KINDS = frozenset({ErrorKind.WORKLOAD_CLIENT_DIED, ErrorKind.DEADLINE_EXCEEDED})

# flwr.common.constant.ErrorCode values (kept here so this module needs no flwr)
CLIENT_APP_RAISED_EXCEPTION = 2
NODE_UNAVAILABLE = 5
CLIENT_APP_CRASHED = 8


def error_code_for(error: TaskError) -> int:
    """The Flower ``ErrorCode`` of a task that produced no reply."""
    if error.kind in CRASH_KINDS:
        return CLIENT_APP_CRASHED
    if error.kind == ErrorKind.NODE_SHUTTING_DOWN:
        return NODE_UNAVAILABLE
    return CLIENT_APP_RAISED_EXCEPTION


@dataclass
class Pending:
    """A pulled message that owes the SuperLink one reply."""

    run_id: int
    message: bytes
    """Its content-less proto (an error reply is built from it)."""
    pulled_at: float
    """``time.monotonic()`` when pulled."""
    size: int = 0


@dataclass
class RunBook:
    """Runs seen (their ``RunInfo``), runs ended, and the pending messages."""

    node_id: int = 0
    node_config: Mapping[str, Any] = field(default_factory=dict)
    runs: dict[int, RunInfo] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)
    ended: set[int] = field(default_factory=set)
    stops_due: deque[int] = field(default_factory=deque)
    overheads: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    """Seconds from pull to reply stored, minus the ClientApp's own time, per message (the recent ones)."""
    checked_at: dict[int, float] = field(default_factory=dict)
    """When each run was last seen running (a message pulled, or ``GetRun`` answered), monotonic."""
    states: dict[int, bytes] = field(default_factory=dict)
    """Each run's ``context.state`` as its latest reply left it (``codec.state_to_bytes``)."""
    journal: Any = None
    """A ``PendingJournal`` that keeps every pending message on disk (a node with its own key), or ``None``."""
    pulled: int = 0
    pushed: int = 0
    error_replies: int = 0
    refused: int = 0
    dropped_run_ended: int = 0

    def run(self, run_id: int) -> RunInfo | None:
        """The run's ``RunInfo`` with the current node id, if the run was seen before."""
        info = self.runs.get(run_id)
        if info is not None and info.node_id != self.node_id:
            info = self.runs[run_id] = replace(info, node_id=self.node_id)
        return info

    def add_run(self, info: RunInfo) -> None:
        self.runs[info.run_id] = info
        self.checked_at[info.run_id] = time.monotonic()

    def runs_to_check(self, now: float, every: float) -> list[int]:
        """Runs with no message pending, not seen running for ``every`` s: ask the SuperLink whether they still run.

        Nothing tells a node that a run ended (``flwr stop``, or its ServerApp
        finished) except a 403 on a call about it; a run between messages makes
        no call, so its WorkloadClient would wait for the idle timeout.
        """
        busy = {p.run_id for p in self.pending.values()}
        due = [r for r in self.runs if r not in busy and now - self.checked_at.get(r, 0.0) >= every]
        for run_id in due:
            self.checked_at[run_id] = now
        return due

    def delivered(self, message_id: str, run_id: int, message: bytes) -> None:
        """``PullMessages`` just returned this message, which the SuperLink now counts delivered: keep it in the
        journal at once, before its run, FAB and objects are fetched (a node killed meanwhile must answer it)."""
        if self.journal is not None:
            self.journal.record(message_id, run_id, message)

    def not_owed(self, message_id: str) -> None:
        """A delivered message needs no reply after all (its run ended, or the SuperLink forgot this node)."""
        self._forget([message_id])

    def received(self, message_id: str, run_id: int, message: bytes, size: int) -> None:
        """A message was pulled and confirmed (and journaled by ``delivered``): it owes a reply."""
        self.pulled += 1
        now = time.monotonic()
        self.pending[message_id] = Pending(run_id, message, now, size)
        self.checked_at[run_id] = now

    def owes(self, message_id: str) -> Pending | None:
        """The pending message ``message_id``, or ``None`` if it was answered already or its run ended."""
        return self.pending.get(message_id)

    def answered(self, message_id: str, runtime_s: float, error: bool) -> None:
        """Its reply was pushed (or refused: it is answered either way)."""
        pending = self.pending.pop(message_id, None)
        if pending is None:
            return
        self._forget([message_id])
        self.pushed += 1
        self.error_replies += error
        self.overheads.append(max(0.0, time.monotonic() - pending.pulled_at - runtime_s))

    def run_ended(self, run_id: int) -> int:
        """The SuperLink said the run is over: forget its pending messages, stop its client; how many were dropped."""
        dropped = [mid for mid, p in self.pending.items() if p.run_id == run_id]
        for message_id in dropped:
            del self.pending[message_id]
        self._forget(dropped)
        self.dropped_run_ended += len(dropped)
        self.runs.pop(run_id, None)
        self.checked_at.pop(run_id, None)
        self.states.pop(run_id, None)
        if run_id not in self.ended:
            self.ended.add(run_id)
            self.stops_due.append(run_id)
        return len(dropped)

    def take_stops(self) -> list[int]:
        """Runs whose WorkloadClient is to be stopped, once each."""
        stops = list(self.stops_due)
        self.stops_due.clear()
        return stops

    def rejoined(self, node_id: int) -> list[str]:
        """The node joined again under ``node_id``: messages pulled before cannot be answered; their ids."""
        self.node_id = node_id
        lost = list(self.pending)
        for message_id in lost:
            del self.pending[message_id]
        self._forget(lost)
        return lost

    def _forget(self, message_ids: list[str]) -> None:
        if self.journal is not None:
            for message_id in message_ids:
                self.journal.forget(message_id)
