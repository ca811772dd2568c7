"""``Dispatch``: a task's way from a pulled batch to its WorkloadClient, decided from the parts.

Placing a workload (a warm process, a fork, or parked under the cap),
feeding a process its tasks (start and first tasks in one message, at most
``WINDOW`` held, never past an ordered stop, nothing to a process deep in a
handler), stopping a workload, and what a report from a process frees.
Like ``Supervision`` it holds no state of its own, never sends and never
imports Thespian: it returns the decisions the LeadClient carries out.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..config import NodeConfig
from .pool import ProcessPool
from .recovery import Recovery
from .routing import WINDOW, Routed, WorkloadTable
from .wire import LONG_HANDLER, ReportTasks, RunTasks, SpawnTurnDone, StartWorkloadClient, TasksDone
from .workload import CheckDeadline, Decision, Exit, Later, Phase, Process, Send, Spawn, Start, Workload

__all__ = ["LONG_HANDLER", "Dispatch"]

log = logging.getLogger(__name__)

STALL_S = 1.0
"""Tasks sent this long ago that an idle process has not started are sent again (see ``Dispatch.stalled``)."""
IDLE_CONFIRM_S = 0.25
"""How long a process must stay idle with the same tasks finished before it counts as stalled: between two
of its tasks (a result leaving, the next task's slice about to start) it looks idle for a few milliseconds."""


class Dispatch:
    """Routes work to WorkloadClient processes; every method returns decisions."""

    def __init__(
        self, config: NodeConfig, table: WorkloadTable, pool: ProcessPool, recovery: Recovery, lead: Any
    ) -> None:
        self.config, self.table, self.pool, self.recovery = config, table, pool, recovery
        self.lead = lead  # the LeadClient's address (WorkloadClients report to it)
        self.sender: Any = None  # the Sender's address (results go there); set by the LeadClient
        self.reports_wanted = False  # the LeadClient waits on every process (pulling paused, or stopping)

    def batch(self, routed: Routed) -> list[Decision]:
        """A pulled batch was routed: its answers, new workloads placed, then one message per process."""
        decisions: list[Decision] = list(routed.answers)
        for workload in routed.new:
            decisions += self.place(workload, feed=False)
        for workload in routed.feed:
            decisions += self.feed(workload)
        return decisions

    def place(self, workload: Workload, feed: bool = True) -> list[Decision]:
        """Give ``workload`` a process (stopping the least recently used idle one at the cap) and feed it;
        with no idle one at the cap it is parked (nothing to do)."""
        at_cap = self.table.at_cap()
        if at_cap:
            self.settle_all()  # a finished workload may be idle
        victim = self.table.least_recently_used_idle() if at_cap else None
        if at_cap and victim is None:
            workload.phase = Phase.PARKED
            return []
        decisions: list[Decision] = []
        if victim is not None:
            log.info("workload %r stopped to make room (max_workloads)", victim.workload_id)
            decisions += self.stop(victim)
        self.pool.assign(workload)
        return [*decisions, Spawn(), *(self.feed(workload) if feed else [])]

    def unpark(self) -> list[Decision]:
        """Parked workloads get a process while the cap allows."""
        decisions: list[Decision] = []
        for workload in self.table.parked() if self.config.max_workloads is not None else ():
            placed = self.place(workload)
            if not placed:
                break
            decisions += placed
        return decisions

    def feed(self, workload: Workload) -> list[Decision]:
        """Send queued tasks, in one message, to ``workload``'s process if it has room."""
        self.settle(workload)
        if self.table.stop_due(workload):
            going_on = self.table.pass_stop(workload)
            decisions = [] if going_on is workload else self.stop(workload)  # it ran the app: a fresh one follows
            if going_on is None:
                return decisions
            return decisions + (self.feed(going_on) if going_on is workload else self.place(going_on))
        process = workload.process
        if process is None or workload.phase not in (Phase.ASSIGNED, Phase.LIVE):
            return []  # no process yet, or its pid is not reported yet: fed when it reports
        if workload.running and self.pool.in_long_handler(workload, time.time(), LONG_HANDLER):
            return []  # fed when it reports (see LONG_HANDLER; a slice that long always reports)
        tasks = self.table.next_tasks(workload, WINDOW if process.slot >= 0 else 1)
        report = self._wants_report(workload, process)
        if workload.phase is Phase.ASSIGNED:  # its start and first tasks in one message
            c, path = self.config, self.recovery.spill_path(process.incarnation)
            start = StartWorkloadClient(
                workload.workload_id,
                c.node_id,
                workload.app,
                self.sender,
                self.lead,
                process.incarnation,
                process.slot,
                path,
                tasks,
                c.max_content_bytes,
                c.share_imports,
                report,
            )
            decisions = [Send(process.address, start) if process.address is not None else Start(process, start)]
            workload.phase = Phase.LIVE if process.pid is not None else Phase.STARTING
        elif tasks:
            decisions = [Send(process.address, RunTasks(tasks, report))]
        elif report and workload.running and not workload.report_asked and process.address is not None:
            workload.report_asked = True  # it holds a full window, or tasks before a stop: room comes with its report
            return [Send(process.address, ReportTasks())]
        else:
            return []
        workload.report_asked = workload.report_asked or report
        workload.last_active, workload.fed_at = time.monotonic(), time.time()
        first_check = self.recovery.sent(workload, tasks, self.config.task_deadline_s)
        if first_check is not None:
            workload.watched = True
            decisions.append(Later(first_check, CheckDeadline(workload.workload_id, workload.incarnation)))
        return decisions

    def stop(self, workload: Workload, *answer: str) -> list[Decision]:
        """Forget ``workload``; its process exits after its running task; its queued tasks get ``answer``."""
        decisions: list[Decision] = list(self.table.stop(workload, *answer))
        self.pool.stop(workload)
        return decisions + ([Exit(workload.process)] if workload.process is not None else [])

    def forked(self, workload: Workload) -> list[Decision]:
        """``workload`` gets a new process: its start (through the Spawner) with its first tasks."""
        self.pool.forked_for(workload)
        return self.feed(workload)

    def reported(self, incarnation: int, pid: int, address: Any) -> list[Decision] | None:
        """A process reported its pid: feed it (or ``None``: it was doomed or is unknown, kill it). A warm
        one that imports the app itself while the Spawner has it already is replaced (``stale_warm``)."""
        reported = self.pool.reported(incarnation, pid, address)
        if reported is not None and reported.kill:
            return None
        workload = reported.workload if reported is not None else None
        stale = self.replace_stale_warm() if reported is not None and reported.warm is not None else []
        return [*(self.feed(workload) if workload is not None else []), *stale, Spawn()]

    def replace_stale_warm(self) -> list[Decision]:
        """Ask the idle warm processes that imported the app themselves to exit, once the Spawner has it (the
        pool refills with processes that share its copy)."""
        return [Exit(process) for process in self.pool.stale_warm()]

    def turn_done(self, turn: SpawnTurnDone) -> tuple[list[int], list[Decision]]:
        """The Spawner forked a turn: the pids to kill now (doomed meanwhile), and what to do for the processes
        whose address came with the turn (they do not report themselves)."""
        kill = self.pool.turn_done(turn.pids)
        pids = dict(turn.pids)
        decisions: list[Decision] = []
        for incarnation, address in turn.addresses:
            pid = pids.get(incarnation)
            if pid is None or pid in kill:
                continue
            reported = self.reported(incarnation, pid, address)
            if reported is None:
                kill.append(pid)
            else:
                decisions += reported
        return kill, [*decisions, Spawn()]

    def done(self, message: TasksDone) -> list[Decision]:
        """A process finished these tasks: it has room again, and a slot may have freed under the cap."""
        workload = self.table.get(message.workload_id)
        live = workload is not None and workload.incarnation == message.incarnation
        if message.ins_ids:
            self.table.progressed(message.workload_id)
        if not live:
            workload = next((r for r in self.pool.retiring if r.incarnation == message.incarnation), None)
        for ins_id in message.ins_ids:
            if workload is not None:
                workload.running.pop(ins_id, None)
        decisions: list[Decision] = []
        if workload is not None and live:
            workload.last_active = time.monotonic()
            workload.report_asked = False  # it reports after each slice while it holds tasks: asked again if need be
            decisions += self.feed(workload)
        return decisions + self.unpark()

    def _wants_report(self, workload: Workload, process: Process) -> bool:
        """Whether ``workload``'s process must send ``TasksDone`` for what it holds: when the LeadClient waits on
        it (more tasks or a stop queued here), under the process cap (a finished workload may make room), and
        without a board slot. Otherwise what finished is read on the ``TaskBoard`` (``settle``): a report per
        slice was a quarter of the messages of a busy node."""
        return process.slot < 0 or bool(workload.queue) or self.config.max_workloads is not None or self.reports_wanted

    def want_reports(self, wanted: bool) -> list[Decision]:
        """Whether every process must report what it finishes (pulling paused for room, or the node stopping):
        on the change to wanted, those holding tasks are asked now."""
        if not wanted or self.reports_wanted:
            self.reports_wanted = wanted
            return []
        self.reports_wanted = True
        decisions: list[Decision] = []
        for workload in self.table:
            process = workload.process
            self.settle(workload)
            if workload.running and not workload.report_asked and process is not None and process.address is not None:
                workload.report_asked = True
                decisions.append(Send(process.address, ReportTasks()))
        return decisions

    def settle(self, workload: Workload) -> None:
        """Forget the tasks ``workload``'s process finished, as read on the ``TaskBoard``."""
        if workload.running:
            self.table.settle(workload, self.pool.board_state(workload))

    def settle_all(self) -> None:
        """``settle`` every workload (before reading what all of them hold)."""
        self.table.settle_all(self.pool.board_state)

    def stalled(self, now: float) -> list[Decision]:
        """Send again the tasks a process should have started ``STALL_S`` ago but has not.

        Measured on a real SuperLink (``bench flower-soak``): about one soak in
        four, a ``RunTasks`` to a WorkloadClient that had just started for a
        restarted or new workload did not reach it until the LeadClient sent
        that process something else, 120 s later in a soak; the task board showed
        the process idle with the task counted as sent. The process drops a
        copy it already has, so a resend is safe; a process inside a handler is
        never "idle" on the board, and one seen idle only once may be between
        two tasks (``IDLE_CONFIRM_S``): seen so in the FED demo, where a task
        queued behind a 2 s one was "sent again" at the moment the first ended.
        """
        decisions: list[Decision] = []
        for workload in list(self.table):
            process = workload.process
            if not workload.running or workload.phase is not Phase.LIVE or process is None:
                continue
            state = self.pool.board_state(workload)
            if state is None or state[2] < state[0] or now - workload.fed_at < STALL_S:
                workload.idle_mark = None
                continue  # no board, in a handler, or fed only just now
            stuck = tuple(task for seq, task in sorted(workload.running.values(), key=lambda e: e[0]) if seq > state[2])
            if not stuck:
                continue
            mark = workload.idle_mark
            if mark is None or mark[0] != state[2]:
                workload.idle_mark = (state[2], now)  # first seen idle after this many tasks: look again later
                continue
            if now - mark[1] < IDLE_CONFIRM_S:
                continue
            workload.idle_mark = None
            log.warning(
                "workload %r: %d task(s) sent %.1f s ago not started by its idle process (pid %s): sent again",
                workload.workload_id,
                len(stuck),
                now - workload.fed_at,
                process.pid,
            )
            workload.fed_at = now
            decisions.append(Send(process.address, RunTasks(stuck)))
        return decisions

    def idle(self, now: float) -> list[Decision]:
        """Stop WorkloadClients idle longer than ``idle_timeout_s``."""
        self.settle_all()
        decisions: list[Decision] = []
        for workload in self.table.idle_for(self.config.idle_timeout_s, now):
            log.info("workload %r idle: stopped", workload.workload_id)
            decisions += self.stop(workload)
        return decisions
