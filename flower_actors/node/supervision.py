"""``Supervision``: the fault sequences of a node, decided from its parts, carried out by the LeadClient.

A process that ends (reported by Thespian or found gone), a handler past its
deadline, a restart delay that is over, and the node's stop each touch
several parts in a fixed order: the pool says what the process was, the
recovery what is owed, the table what restarts. This is the one place that
order is written. It holds no state of its own, never sends and never
imports Thespian: every method returns the decisions the LeadClient carries
out, so each sequence is unit-tested without processes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import ErrorKind
from .pool import ProcessPool
from .recovery import Expired, Recovery
from .routing import WorkloadTable
from .shutdown import ORPHAN_GRACE, Shutdown
from .workload import (
    CheckDeadline,
    Decision,
    Deliver,
    Flush,
    Job,
    Kill,
    Later,
    OrphansDue,
    Place,
    RestartDue,
    Spawn,
    Unpark,
    Workload,
)

__all__ = ["Supervision"]

log = logging.getLogger(__name__)


class Supervision:
    """What a node does when its processes end or hang, and when it stops."""

    def __init__(
        self,
        table: WorkloadTable,
        pool: ProcessPool,
        recovery: Recovery,
        shutdown: Shutdown,
        node_deadline: float | None,
        alive: Callable[[int], bool],
    ) -> None:
        self.table, self.pool, self.recovery, self.shutdown = table, pool, recovery, shutdown
        self.node_deadline = node_deadline
        self.alive = alive  # whether a pid still runs (``runtime.proc.process_alive``)
        self.exiting = False  # Thespian is stopping the node's actors: nothing restarts

    def process_ended(self, incarnation: int, now: float) -> list[Decision]:
        """A WorkloadClient process (warm, retiring or a workload's) has ended: what it is owed, what restarts."""
        stopping = self.exiting or self.shutdown.active
        if (warm := self.pool.warm_exited(incarnation)) is not None:
            if not stopping and (module := self.pool.warm_died(now)) is not None:
                log.warning(
                    "a warm WorkloadClient (pid %s) died importing %r ahead: no more imports ahead", warm.pid, module
                )
            return []
        if (retired := self.pool.retired_exited(incarnation)) is not None:
            answers, died = self.recovery.retired_ended(retired, self.pool.board_state(retired))
            self.pool.deaths += died
            return [*answers, *self._released(retired)]
        workload = self.table.by_incarnation(incarnation)
        if workload is None:
            return []
        self.pool.deaths += 1
        answers, progressed = self.recovery.died(workload, self.pool.board_state(workload))
        log.log(
            logging.INFO if progressed and not answers else logging.WARNING,  # between tasks: Thespian's stop
            "workload %r: WorkloadClient (pid %s) exited %s",
            workload.workload_id,
            workload.pid,
            "in a handler" if answers else "between tasks" if progressed else "before it ran a task",
        )
        return [*answers, *self._restart(workload, progressed, now), *self._released(workload)]

    def spawner_lost(self, now: float) -> list[Decision]:
        """The Spawner died: no exit notice of its WorkloadClients would come, so each is killed and ended
        now (its tasks answered, its workload restarted from a new Spawner)."""
        self.pool.spawner_replaced()
        decisions: list[Decision] = []
        for process in self.pool.every_process(list(self.table)):
            decisions.append(Kill(process))
            decisions += self.process_ended(process.incarnation, now)
        return decisions

    def unnoticed(self) -> list[int]:
        """Incarnations of processes that ended without Thespian saying so (it misses some when several end at once)."""
        self.table.settle_all(self.pool.board_state)  # processes report finished tasks only when asked
        return self.pool.gone_unnoticed(list(self.table), self.alive)

    def check_deadline(self, check: CheckDeadline, now: float, monotonic: float) -> list[Decision]:
        """Judge the task a process runs against its deadline (counted from the handler's real start)."""
        workload = self.table.get(check.workload_id)
        if workload is None or workload.incarnation != check.incarnation or workload.process is None:
            return []
        workload.watched = False
        state = self.pool.board_state(workload)
        self.table.settle(workload, state)
        verdict = Recovery.check(workload, state, now, self.node_deadline)
        if isinstance(verdict, float):
            workload.watched = True
            return [Later(verdict, check)]
        if not isinstance(verdict, Expired):
            return []
        if workload.pid is not None and not self.alive(workload.pid):  # it died, and Thespian has not said so yet
            return self.process_ended(workload.process.incarnation, monotonic)
        log.warning(
            "workload %r: task %s exceeded its %s s deadline; killing pid %s",
            workload.workload_id,
            verdict.task.task_id,
            verdict.deadline,
            workload.pid,
        )
        self.pool.deaths += 1
        self.pool.deadline_kills += 1
        decisions: list[Decision] = [
            *self.recovery.expired(workload, verdict, self.pool.board_state(workload)),
            Kill(workload.process),
            *self.read_back(workload.incarnation),
        ]
        self.pool.retire(workload)  # its exit notice must not answer anything twice
        return decisions + self._restart(workload, True, monotonic)

    def restart_due(self, due: RestartDue) -> list[Decision]:
        workload = self.table.restart_due(due.workload_id, due.token)
        return [Place(workload)] if workload is not None else []

    def orphans_due(self, due: OrphansDue) -> list[Decision]:
        return list(
            self.recovery.orphans(
                due.incarnation,
                ErrorKind.WORKLOAD_CLIENT_DIED,
                "the handler finished but its result did not leave its process",
            )
        )

    def read_back(self, incarnation: int | None) -> list[Decision]:
        """Results in spill files go to the Sender; what a process still owes is answered after a grace period."""
        found = self.recovery.read_back(incarnation)
        decisions: list[Decision] = [Deliver(tuple(found))] if found else []
        if incarnation is not None and self.recovery.owes(incarnation):
            decisions.append(Later(ORPHAN_GRACE, OrphansDue(incarnation)))
        return decisions

    # The node's stop.

    def stop_requested(self) -> list[Decision]:
        """``StopNode`` arrived: workloads without a process never start; drain now if nothing runs."""
        return [*self.table.drop_waiting(), *self.maybe_drain()]

    def maybe_drain(self) -> list[Decision]:
        if self.shutdown.active:
            self.table.settle_all(self.pool.board_state)  # processes report finished tasks only when asked
        if self.shutdown.active and all(w.idle for w in self.table):
            return self.drain()
        return []

    def drain(self) -> list[Decision]:
        """Answer what is left, stop every WorkloadClient (killing stuck ones), then flush the Sender."""
        if not self.shutdown.begin_draining():
            return []
        busy = [*self.table, *self.pool.retiring]
        decisions = [*self.recovery.stop_all(busy, self.pool.board_state), *self.pool.stop_all()]
        self.table.workloads.clear()
        if self.recovery.unconfirmed:  # results may still be on their way from processes that just stopped
            return [*decisions, Later(ORPHAN_GRACE, Job.FLUSH)]
        return decisions + self.flush()

    def flush(self) -> list[Decision]:
        """Last results from spill files, an answer for every task still unconfirmed, then the Sender's flush."""
        return [
            *self.read_back(None),
            *self.recovery.orphans(
                None, ErrorKind.NODE_SHUTTING_DOWN, "the node stopped before the result of this task reached the Sender"
            ),
            Flush(),
        ]

    def exit_now(self) -> list[Decision]:
        """Thespian stops the actors: nothing restarts; processes stuck in a handler are killed."""
        self.exiting = True
        self.table.settle_all(self.pool.board_state)
        return [Kill(w.process) for w in [*self.table, *self.pool.retiring] if w.running and w.process is not None]

    # Steps.

    def _restart(self, workload: Workload, progressed: bool, now: float) -> list[Decision]:
        plan = self.table.restart(workload, progressed, now, self.shutdown.active or self.exiting)
        if plan.gave_up:
            log.error("%s", plan.gave_up)
        decisions: list[Decision] = list(plan.answers)
        if plan.workload is None:
            decisions.append(Unpark())
        elif plan.delay > 0:
            decisions.append(Later(plan.delay, RestartDue(workload.workload_id, plan.workload.held)))
        else:
            decisions.append(Place(plan.workload))
        return decisions + self.maybe_drain()

    def _released(self, workload: Workload) -> list[Decision]:
        """Its process is gone: free its slots (a spawning slot too, if it never reported); read back its results."""
        return [*([Spawn()] if self.pool.released(workload) else []), *self.read_back(workload.incarnation)]
