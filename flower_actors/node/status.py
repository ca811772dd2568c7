"""``node_status``: a ``NodeStatus`` read off a node's parts (each counter kept in one place)."""

from __future__ import annotations

import os

from ..control import NodeStatus
from .intake import Intake, PullSchedule
from .pool import ProcessPool
from .routing import WorkloadTable
from .wire import SenderProgress

__all__ = ["node_status"]


def node_status(
    request_id: int,
    table: WorkloadTable,
    pool: ProcessPool,
    intake: Intake,
    schedule: PullSchedule,
    sender: SenderProgress,
) -> NodeStatus:
    """The node's counters now; ``sender`` is the Sender's latest report."""
    return NodeStatus(
        request_id=request_id,
        node_id=table.node_id,
        workloads_live=table.live(),
        workloads_created=pool.created,
        tasks_pulled=intake.pulled,
        tasks_in_flight=table.in_flight(),
        results_pushed=sender.pushed,
        errors=sender.errors,
        duplicates_dropped=intake.duplicates,
        bad_input=intake.bad_input,
        pulls=schedule.pulls,
        pull_failures=schedule.failures,
        next_pull_at=schedule.next_pull_at,
        workloads_parked=len(table.parked()),
        workloads_stopped=pool.stopped,
        deaths=pool.deaths,
        deadline_kills=pool.deadline_kills,
        workloads_warm=len(pool.warm),
        unpushed=sender.buffered,
        pulling_paused=schedule.paused,
        handler_pids=tuple(w.pid for w in table if w.pid is not None),
        pid=os.getpid(),
        session_id=os.getsid(0),
    )
