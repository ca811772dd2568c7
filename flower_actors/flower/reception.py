"""What the link does with a pulled message before a WorkloadClient takes it, and its status report.

``fetch_run`` learns a new run (``GetRun``, ``GetFab``, the FAB installed
once, the run config fused); ``task_for`` wraps the message as the
``TaskIns`` the LeadClient routes (the run id is the workload id; the
deadline is the node's, capped by the message's TTL).
"""

from __future__ import annotations

import logging
import time

from ..messages import TaskIns, dump_content
from .control import LinkStatus
from .fabs import FabStore
from .fleet import FleetSession, Pulled
from .run_client import FLOWER_MESSAGE_TYPE
from .runs import RunBook
from .wire import FlowerIns, RunInfo

__all__ = ["TTL_MARGIN_S", "deadline_for", "fetch_run", "link_status", "task_for"]

log = logging.getLogger(__name__)

TTL_MARGIN_S = 1.0
"""A ClientApp call must end this long before the message's TTL, or its reply is refused."""


def fetch_run(session: FleetSession, fabs: FabStore, book: RunBook, run_id: int) -> RunInfo:
    """A run seen for the first time: ask for it and its FAB, install the FAB, record the run."""
    run = session.get_run(run_id)
    fab = session.get_fab(run.fab_hash, run_id)
    fabs.install(fab)
    info = RunInfo(
        run_id=run_id,
        node_id=book.node_id,
        fab_id=run.fab_id,
        fab_version=run.fab_version,
        fab_hash=fab.hash_str,
        run_config=fabs.run_config(fab, run),
        node_config=dict(book.node_config),
        series_id=int(getattr(run, "series_id", 0) or 0),
        flwr_home=str(fabs.home),
    )
    book.add_run(info)
    log.info("run %s: %s %s (FAB %s) joined", run_id, run.fab_id, run.fab_version, fab.hash_str[:8])
    return info


def deadline_for(pulled: Pulled, limit: float | None) -> float | None:
    """The node's limit, capped by the time left of the message's TTL (at least 1 s)."""
    if pulled.ttl > 0 and pulled.created_at > 0:
        left = max(pulled.created_at + pulled.ttl - time.time() - TTL_MARGIN_S, 1.0)
        limit = left if limit is None else min(limit, left)
    return limit


def task_for(pulled: Pulled, ins: FlowerIns, node_id: int, limit: float | None) -> TaskIns:
    """The task that carries ``ins`` to its run's WorkloadClient (its id is the message id)."""
    return TaskIns(
        task_id=pulled.message_id,
        node_id=node_id,
        workload_id=pulled.run_id,
        message_type=FLOWER_MESSAGE_TYPE,
        payload=dump_content(ins),
        created_at=pulled.created_at,
        deadline_s=deadline_for(pulled, limit),
    )


def link_status(book: RunBook, node_id: int | None, joins: int, installs: int, heartbeats: int) -> LinkStatus:
    """The link's counters, read off its ``RunBook``."""
    return LinkStatus(
        node_id=node_id,
        online=node_id is not None,
        runs=tuple(book.runs),
        pulled=book.pulled,
        pushed=book.pushed,
        error_replies=book.error_replies,
        refused=book.refused,
        dropped_run_ended=book.dropped_run_ended,
        pending=len(book.pending),
        joins=joins,
        installs=installs,
        heartbeats=heartbeats,
        overhead_ms=tuple(round(s * 1000, 2) for s in book.overheads),
    )
