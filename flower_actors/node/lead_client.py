"""``LeadClient``: one actor per node, the mediator between the server link, the parts and the processes.

It pulls ``TaskIns`` (``PullSchedule``), accepts them (``Intake``), queues
each at its workload (``WorkloadTable``), gives a workload a WorkloadClient
process (``ProcessPool``) and sends it its tasks. Results go from the
WorkloadClient straight to the Sender; the LeadClient hears ``TasksDone``.
When a process ends, a handler passes its deadline or the node stops,
``Supervision`` decides from the parts what is owed. The parts decide; this
is the one place that sends, forks, kills and sets timers (``_do``).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from thespian.actors import ActorAddress, ActorExitRequest, ChildActorExited, WakeupMessage

from .. import control
from ..config import AppSpec, NodeConfig
from ..errors import ErrorKind
from ..link.protocol import LinkError, TaskInsBatch
from ..messages import TaskError, TaskRes
from ..runtime.actor_base import TRANSPORT_PAUSE, SafeActor
from ..runtime.proc import process_alive
from . import task_board, wire
from .intake import Intake, PullSchedule
from .pool import ProcessPool
from .recovery import Recovery
from .routing import WINDOW, WorkloadTable
from .sender import Sender
from .shutdown import SENDER_FLUSH_TIMEOUT, Shutdown
from .spill import make_spill_dir, remove_spill_dir
from .status import node_status
from .supervision import Supervision
from .workload import (
    Answer,
    CheckDeadline,
    Decision,
    Deliver,
    Exit,
    FlushSender,
    Job,
    Kill,
    Later,
    OrphansDue,
    Phase,
    Place,
    RestartDue,
    Spawn,
    Unpark,
    Workload,
)
from .workload_client import WorkloadClient

__all__ = ["LeadClient"]

log = logging.getLogger(__name__)

LONG_HANDLER = 0.005
"""A WorkloadClient whose handler has run longer than this gets its next tasks when it reports, not now:
a message to a process inside a handler holds one of the LeadClient's 20 transmit slots until it ends."""
HOUSEKEEPING_PERIOD = 0.5
"""Seconds between checks for lost pulls, unreported deaths, idle workloads and stop deadlines."""
STATUS_WAIT = 0.25
"""Longest a ``GetNodeStatus`` waits for the Sender to have no push unacknowledged before it is answered."""


class LeadClient(SafeActor):
    """Pulls tasks for one node and routes each to its workload's WorkloadClient."""

    config: NodeConfig
    server: ActorAddress
    sender: ActorAddress
    schedule: PullSchedule
    intake: Intake
    table: WorkloadTable
    pool: ProcessPool
    recovery: Recovery
    shutdown: Shutdown
    supervision: Supervision

    def __init__(self) -> None:
        super().__init__()
        self.started = self.spawn_pending = self.retry_pending = False
        self.spill_dir: str | None = None
        self.status_waiters: list[tuple[ActorAddress, int]] = []
        self.status_seq = 0
        self.progress = wire.SenderProgress(0, 0, 0)  # the Sender's latest report

    def receiveMessage(self, message: Any, sender: ActorAddress) -> None:
        if self.started or isinstance(message, (control.StartLeadClient, ActorExitRequest, ChildActorExited)):
            super().receiveMessage(message, sender)
        else:  # the parts exist once started: nothing else can be served before
            log.warning("LeadClient not started: ignored %s", type(message).__name__)
            if isinstance(message, control.StopNode):
                self.send(sender, control.NodeStopped("", 0, 0))

    def receive_StartLeadClient(self, message: control.StartLeadClient, sender: ActorAddress) -> None:
        config, server = message.config, message.server
        error = _refusal(self.started, config, server)
        if error is None:
            self.config, self.server, self.started = config, server, True
            board = task_board.CURRENT = task_board.TaskBoard(max(4096, 2 * (config.max_workloads or 0)))  # pre-fork
            self.schedule, self.intake = PullSchedule(config, time.time()), Intake(config)
            self.table, self.shutdown, self.spill_dir = WorkloadTable(config), Shutdown(), make_spill_dir()
            self.pool = ProcessPool(board, config.warm_pool, config.default_app.module if config.default_app else None)
            self.recovery = Recovery(self.spill_dir)
            self.supervision = Supervision(
                self.table, self.pool, self.recovery, self.shutdown, config.task_deadline_s, process_alive
            )
            self._start_sender()
            self._do([Spawn(), Later(HOUSEKEEPING_PERIOD, Job.HOUSEKEEPING)])
            self._pull()
            if not config.long_poll:
                self._arm_tick()
            log.info("node %r started (%s)", config.node_id, "long-poll" if config.long_poll else "periodic")
        node_id, next_pull = (config.node_id, self.schedule.next_pull_at) if self.started else ("", None)
        self.send(sender, control.LeadClientStarted(node_id, os.getpid(), os.getsid(0), next_pull or 0.0, error))

    def _start_sender(self) -> None:
        self.sender, c = self.createActor(Sender), self.config
        self.send(
            self.sender,
            wire.StartSender(c.node_id, self.server, self.myAddress, c.request_timeout, c.retry_backoff_max),
        )

    # Pull → route → feed.

    def _pull(self) -> None:
        was_paused = self.schedule.paused
        room = self.schedule.room(self.table.in_flight(), self.progress.buffered)
        pull = None if self.shutdown.active or self.supervision.exiting else self.schedule.pull(room, time.monotonic())
        if pull is not None:
            self.send(self.server, pull)
        elif self.schedule.paused and not was_paused:
            log.warning(
                "node %r saturated (%d in flight, %d unpushed): pulling paused",
                self.config.node_id,
                self.table.in_flight(),
                self.progress.buffered,
            )

    def _arm_tick(self) -> None:
        self._do([Later(self.schedule.next_tick(time.time()), Job.PULL)])

    def receive_TaskInsBatch(self, batch: TaskInsBatch, sender: ActorAddress) -> None:
        self.schedule.answered(batch.request_id)
        items, now = batch.tasks if isinstance(batch.tasks, (tuple, list)) else (), time.time()
        if not isinstance(batch.tasks, (tuple, list)):
            self.intake.dropped(f"a TaskInsBatch whose tasks are a {type(batch.tasks).__name__}")
        routed = self.table.route_batch(
            items, lambda item: self.intake.accept(item, now, self.shutdown.active), time.monotonic()
        )
        for why in routed.dropped:
            log.error("node %r dropped malformed input from the server: %s", self.config.node_id, why)
        self._do(routed.answers)
        for workload in routed.new:
            self._place(workload)
        for workload in routed.feed:
            self._feed(workload)
        if self.config.long_poll:
            self._pull()

    def receive_LinkError(self, message: LinkError, sender: ActorAddress) -> None:
        self._pull_failed(message.request_id, f"server error: {message.message}")

    def _pull_failed(self, request_id: int | None, why: str) -> None:
        delay = self.schedule.failed(request_id, time.monotonic())
        if delay is not None and self.schedule.backoff.worth_logging():
            log.warning(
                "node %r: pull failed (%s); %d failure(s), retrying in %.2f s",
                self.config.node_id,
                why,
                self.schedule.backoff.failures,
                delay,
            )
        if delay is not None and self.config.long_poll and not self.retry_pending:
            self.retry_pending = True
            self._do([Later(delay, Job.RETRY)])

    def _place(self, workload: Workload) -> bool:
        """Give ``workload`` a process (stopping the least recently used idle one at the cap); else park it."""
        victim = self.table.least_recently_used_idle() if self.table.at_cap() else None
        if self.table.at_cap() and victim is None:
            workload.phase = Phase.PARKED
            return False
        if victim is not None:
            log.info("workload %r stopped to make room (max_workloads)", victim.workload_id)
            self._stop(victim)
        self.pool.assign(workload)
        self._do([Spawn()])
        return True

    def _feed(self, workload: Workload) -> None:
        """Send queued tasks, in one message, to a workload's process with room (``WINDOW``)."""
        if self.table.stop_due(workload):
            going_on = self.table.pass_stop(workload)
            if going_on is not workload:  # its process ran the app: it exits, and what followed gets a fresh one
                self._stop(workload)
            if going_on is not None and (going_on is workload or self._place(going_on)):
                self._feed(going_on)
            return
        process = workload.process
        if (
            process is None
            or workload.phase not in (Phase.ASSIGNED, Phase.LIVE)
            or (workload.running and self.pool.in_long_handler(workload, time.time(), LONG_HANDLER))
        ):
            return  # no process, or its pid is not reported yet, or it is deep in a handler: fed when it reports
        tasks = self.table.next_tasks(workload, WINDOW if process.slot >= 0 else 1)
        if workload.phase is Phase.ASSIGNED:  # its start and first tasks in one message
            c, path = self.config, self.recovery.spill_path(process.incarnation)
            self.send(
                process.address,
                wire.StartWorkloadClient(
                    workload.workload_id,
                    c.node_id,
                    workload.app,
                    self.sender,
                    self.myAddress,
                    process.incarnation,
                    process.slot,
                    path,
                    tasks,
                    c.max_content_bytes,
                ),
            )
            workload.phase = Phase.LIVE if process.pid is not None else Phase.STARTING
        elif tasks:
            self.send(process.address, wire.RunTasks(tasks))
        else:
            return
        workload.last_active, workload.fed_at = time.monotonic(), time.time()
        first_check = self.recovery.sent(workload, tasks, self.config.task_deadline_s)
        if first_check is not None:
            workload.watched = True
            self._do([Later(first_check, CheckDeadline(workload.workload_id, workload.incarnation))])

    def _spawn_turn(self) -> None:
        self.spawn_pending = False
        plan = self.pool.turn(time.monotonic(), self.shutdown.active or self.supervision.exiting)
        for workload in plan.workloads if not self.supervision.exiting else ():
            self.pool.forked_for(workload, self.createActor(WorkloadClient))
            self._feed(workload)
        for _ in range(plan.warm):
            warm = self.pool.forked_warm(self.createActor(WorkloadClient))
            self.send(
                warm.address,
                wire.PrewarmWorkloadClient(warm.incarnation, warm.slot, self.myAddress, self.pool.preimport),
            )
        if plan.again and not self.supervision.exiting:
            self._do([Spawn()])

    def _stop(self, workload: Workload, *answer: str) -> None:
        """Forget ``workload``; its process exits after its running task; its queued tasks get ``answer``."""
        self._do(self.table.stop(workload, *answer) if answer else [])
        self.table.forget(workload)
        self.pool.stop(workload)
        self._do([Exit(workload.process)] if workload.process is not None else [])

    def _do(self, decisions: Iterable[Decision]) -> None:
        """Carry out what the parts decided: the one place that sends, kills and sets timers."""
        for decision in decisions:
            match decision:
                case Answer(task=task, kind=kind, message=message):
                    self.recovery.answered(task.task_id)
                    self.send(self.sender, TaskRes.answer(task, error=TaskError(kind, message)))
                case Exit(process=process) | Kill(process=process):  # a stuck handler never reads an exit request
                    self.send(process.address, ActorExitRequest())
                    if isinstance(decision, Kill) and self.pool.doom(process) and process.pid is not None:
                        _kill(process.pid)
                case Deliver(results=results):
                    self.send(self.sender, wire.TaskResGroup(results))
                case Later(delay=delay, payload=payload):
                    self.wakeupAfter(timedelta(seconds=max(0.0, delay)), payload)
                case Place(workload=workload):
                    if self._place(workload):
                        self._feed(workload)
                case Unpark():
                    for workload in self.table.parked() if self.config.max_workloads is not None else ():
                        if not self._place(workload):
                            break
                        self._feed(workload)
                case Spawn() if not self.spawn_pending:  # a turn once the transport has run
                    self.spawn_pending = True
                    self.wakeupAfter(TRANSPORT_PAUSE, Job.SPAWN)
                case FlushSender():
                    self.send(self.sender, wire.FlushSender(time.time() + SENDER_FLUSH_TIMEOUT))

    # Reports from the node's own actors, and its timers.

    def receive_WorkloadClientStarted(self, message: wire.WorkloadClientStarted, sender: ActorAddress) -> None:
        reported = self.pool.reported(message.incarnation, message.pid)
        if reported is not None and reported.kill:
            _kill(message.pid)
        elif reported is not None and reported.workload is not None:
            self._feed(reported.workload)
        self._do([Spawn()])

    def receive_TasksDone(self, message: wire.TasksDone, sender: ActorAddress) -> None:
        workload = self.table.get(message.workload_id)
        live = workload is not None and workload.incarnation == message.incarnation
        if message.ins_ids:
            self.table.progressed(message.workload_id)
        if not live:
            workload = next((r for r in self.pool.retiring if r.incarnation == message.incarnation), None)
        for ins_id in message.ins_ids:
            if workload is not None:
                workload.running.pop(ins_id, None)
        if workload is not None and live:
            workload.last_active = time.monotonic()
            self._feed(workload)
        self._do([Unpark(), *self.supervision.maybe_drain()])
        self._pull_if_paused()

    def receive_SenderProgress(self, message: wire.SenderProgress, sender: ActorAddress) -> None:
        self.recovery.confirmed(message.received)
        self.progress = message
        if not message.pushing and message.report_seq == self.status_seq:
            self._answer_status()
        self._pull_if_paused()

    def _pull_if_paused(self) -> None:
        if self.schedule.paused and self.config.long_poll:
            self._pull()

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        match message.payload:
            case Job.PULL if not (self.shutdown.active or self.supervision.exiting):
                self._pull()
                self._arm_tick()
            case Job.RETRY:
                self.retry_pending = False
                self._pull()
            case Job.HOUSEKEEPING if not self.supervision.exiting:
                self._housekeeping()
            case Job.SPAWN:
                self._spawn_turn()
            case Job.STATUS:
                self._answer_status()
            case Job.FLUSH:
                self._do(self.supervision.flush())
            case CheckDeadline() as check:
                self._do(self.supervision.check_deadline(check, time.time(), time.monotonic()))
            case OrphansDue() as due:
                self._do(self.supervision.orphans_due(due))
            case RestartDue() as due:
                self._do(self.supervision.restart_due(due))

    def _housekeeping(self) -> None:
        if self.schedule.lost(time.monotonic()):
            self._pull_failed(None, "no answer")  # periodic mode: a later tick pulls once the back-off allows
        if self.shutdown.overdue(time.time()):
            self._do(self.supervision.drain())
        else:
            for address in self.supervision.unnoticed():
                log.warning("node %r: a WorkloadClient ended without notice", self.config.node_id)
                self._do(self.supervision.process_ended(address, time.monotonic()))
            for workload in self.table.idle_for(self.config.idle_timeout_s, time.monotonic()):
                log.info("workload %r idle: stopped", workload.workload_id)
                self._stop(workload)
            self._pull_if_paused()
            self._do([Spawn()] if self.pool.needs_refill() else [])  # refills once a pause after warm deaths is over
        self._do([Later(HOUSEKEEPING_PERIOD, Job.HOUSEKEEPING)])

    def receive_ChildActorExited(self, message: ChildActorExited, sender: ActorAddress) -> None:
        if message.childAddress != self.sender:
            self._do(self.supervision.process_ended(message.childAddress, time.monotonic()))
        elif not (self.supervision.exiting or self.shutdown.active):
            log.error("node %r: the Sender exited; starting a new one", self.config.node_id)
            self._start_sender()

    # Requests of the program that runs the node.

    def receive_RegisterWorkload(self, message: control.RegisterWorkload, sender: ActorAddress) -> None:
        ok = isinstance(message.app, AppSpec)
        error = (
            self.table.register(message.workload_id, message.app)
            if ok
            else f"app must be an AppSpec, got {type(message.app).__name__}"
        )
        self.send(sender, control.WorkloadRegistered(message.workload_id, error))

    def receive_StopWorkload(self, message: control.StopWorkload, sender: ActorAddress) -> None:
        """From the program: at once; the tasks it has not started get ``WorkloadStopped``."""
        workload = self.table.get(message.workload_id)
        if workload is not None:
            self._stop(workload, ErrorKind.WORKLOAD_STOPPED, "the workload was stopped")
            self._do([Unpark()])
        self.send(sender, control.WorkloadStopped(message.workload_id, workload is not None))

    def receive_GetNodeStatus(self, message: control.GetNodeStatus, sender: ActorAddress) -> None:
        """Answered by the Sender's first report after this request with no push unacknowledged (its counts
        then include every result the server stored), or after ``STATUS_WAIT`` with the last known ones."""
        self.status_waiters.append((sender, message.request_id))
        if self.shutdown.reply is not None:
            self._answer_status()
        elif len(self.status_waiters) == 1:
            self.status_seq += 1
            self.send(self.sender, wire.ReportProgress(self.status_seq))
            self._do([Later(STATUS_WAIT, Job.STATUS)])

    def _answer_status(self) -> None:
        waiters, self.status_waiters = self.status_waiters, []
        for who, request_id in waiters:
            self.send(who, node_status(request_id, self.table, self.pool, self.intake, self.schedule, self.progress))

    def receive_StopNode(self, message: control.StopNode, sender: ActorAddress) -> None:
        if self.shutdown.reply is not None:  # already stopped: say so again
            self.send(sender, self.shutdown.reply)
        elif self.shutdown.request(sender, message.timeout_s, time.time()):
            self.schedule.next_pull_at = None
            self._do(self.supervision.stop_requested())

    def receive_SenderFlushed(self, message: wire.SenderFlushed, sender: ActorAddress) -> None:
        waiters = self.shutdown.finished(self.config.node_id, message.pushed, message.unpushed)
        if waiters and message.unpushed:
            log.error(
                "node %r stopped with %d result(s) the server never acknowledged", self.config.node_id, message.unpushed
            )
        for who in waiters:
            self.send(who, self.shutdown.reply)

    def receive_ActorExitRequest(self, message: Any, sender: ActorAddress) -> None:
        # Thespian stops the children after this returns; they must not be replaced, and stuck ones must die.
        if self.started:
            self._do(self.supervision.exit_now())
        remove_spill_dir(self.spill_dir)


def _refusal(started: bool, config: Any, server: Any) -> str | None:
    """Why a ``StartLeadClient`` is refused, or ``None``."""
    if started:
        return "this LeadClient is already started"
    if not isinstance(config, NodeConfig):
        return f"config must be a NodeConfig, got {type(config).__name__}"
    if not isinstance(server, ActorAddress):
        return f"server must be an ActorAddress, got {type(server).__name__}"
    return None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
