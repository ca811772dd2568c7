"""``LeadClient``: one actor per node, the mediator between the server link, the parts and the processes.

It pulls ``TaskIns`` (``PullSchedule``), accepts them (``Intake``), queues
each at its workload (``WorkloadTable``), gives a workload a WorkloadClient
process (``ProcessPool``) and sends it its tasks. Results go from the
WorkloadClient straight to the Sender; the LeadClient hears ``TasksDone``.
When a process ends or a handler passes its deadline, ``Recovery`` says what
is owed; ``Shutdown`` drives ``StopNode``. The parts decide; this is the one
place that sends, forks and kills. What each fault costs: the README.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from datetime import timedelta
from collections.abc import Iterable
from typing import Any

from thespian.actors import ActorAddress, ActorExitRequest, ChildActorExited, WakeupMessage

from ..config import AppSpec, NodeConfig
from ..control import (GetNodeStatus, LeadClientStarted, NodeStatus, NodeStopped, RegisterWorkload, StartLeadClient,
                       StopNode, StopWorkload, WorkloadRegistered, WorkloadStopped)
from ..errors import ErrorKind
from ..link.protocol import LinkError, TaskInsBatch
from ..messages import TaskError, TaskRes
from ..runtime.actor_base import TRANSPORT_PAUSE, SafeActor
from ..runtime.proc import process_alive
from . import task_board
from .intake import Intake, PullSchedule
from .pool import ProcessPool
from .recovery import Expired, Recovery
from .routing import WINDOW, WorkloadTable
from .sender import Sender
from .shutdown import ORPHAN_GRACE, SENDER_FLUSH_TIMEOUT, Shutdown
from .spill import make_spill_dir, remove_spill_dir
from .wire import (FlushSender, PrewarmWorkloadClient, ReportProgress, RunTasks, SenderFlushed, SenderProgress,
                   StartSender, StartWorkloadClient, TaskResGroup, TasksDone, WorkloadClientStarted)
from .workload import Answer, CheckDeadline, Decision, Exit, Job, Kill, OrphansDue, Phase, RestartDue, Workload
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

    def __init__(self) -> None:
        super().__init__()
        self.started = self.exiting = self.spawn_pending = self.retry_pending = False
        self.spill_dir: str | None = None
        self.status_waiters: list[tuple[ActorAddress, int]] = []
        self.pushed = self.push_errors = self.unpushed = self.status_seq = 0

    def receiveMessage(self, message: Any, sender: ActorAddress) -> None:
        if self.started or isinstance(message, (StartLeadClient, ActorExitRequest, ChildActorExited)):
            super().receiveMessage(message, sender)
        else:  # the parts exist once started: nothing else can be served before
            log.warning("LeadClient not started: ignored %s", type(message).__name__)
            if isinstance(message, StopNode):
                self.send(sender, NodeStopped("", 0, 0))

    def receive_StartLeadClient(self, message: StartLeadClient, sender: ActorAddress) -> None:
        config, server = message.config, message.server
        error = ("this LeadClient is already started" if self.started
                 else f"config must be a NodeConfig, got {type(config).__name__}" if not isinstance(config, NodeConfig)
                 else f"server must be an ActorAddress, got {type(server).__name__}"
                 if not isinstance(server, ActorAddress) else None)
        if error is None:
            self.config, self.server, self.started = config, server, True
            board = task_board.CURRENT = task_board.TaskBoard(max(4096, 2 * (config.max_workloads or 0)))  # pre-fork
            self.schedule, self.intake, self.table = PullSchedule(config, time.time()), Intake(config), \
                WorkloadTable(config)
            self.pool = ProcessPool(board, config.warm_pool, config.default_app.module if config.default_app else None)
            self.spill_dir = make_spill_dir()
            self.recovery, self.shutdown = Recovery(self.spill_dir), Shutdown()
            self._start_sender()
            self._ask_spawn()
            self._pull()
            if not config.long_poll:
                self._arm_tick()
            self.wakeupAfter(timedelta(seconds=HOUSEKEEPING_PERIOD), Job.HOUSEKEEPING)
            log.info("node %r started (%s)", config.node_id, "long-poll" if config.long_poll else "periodic")
        next_pull = self.schedule.next_pull_at if self.started else None
        node_id = self.config.node_id if self.started else ""
        self.send(sender, LeadClientStarted(node_id, os.getpid(), os.getsid(0), next_pull or 0.0, error))

    def _start_sender(self) -> None:
        self.sender, c = self.createActor(Sender), self.config
        self.send(self.sender, StartSender(c.node_id, self.server, self.myAddress, c.request_timeout, c.retry_backoff_max))

    # Pull → route → feed.

    def _pull(self) -> None:
        was_paused = self.schedule.paused
        room = self.schedule.room(self.table.in_flight(), self.unpushed)
        pull = None if self.shutdown.active or self.exiting else self.schedule.pull(room, time.monotonic())
        if pull is not None:
            self.send(self.server, pull)
        elif self.schedule.paused and not was_paused:
            log.warning("node %r saturated (%d in flight, %d unpushed): pulling paused", self.config.node_id,
                        self.table.in_flight(), self.unpushed)

    def _arm_tick(self) -> None:
        self.wakeupAfter(timedelta(seconds=self.schedule.next_tick(time.time())), Job.PULL)

    def receive_TaskInsBatch(self, batch: TaskInsBatch, sender: ActorAddress) -> None:
        self.schedule.answered(batch.request_id)
        items, now = batch.tasks if isinstance(batch.tasks, (tuple, list)) else (), time.time()
        if not isinstance(batch.tasks, (tuple, list)):
            self.intake.dropped(f"a TaskInsBatch whose tasks are a {type(batch.tasks).__name__}")
        routed = self.table.route_batch(items, lambda item: self.intake.accept(item, now, self.shutdown.active),
                                        time.monotonic())
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
            log.warning("node %r: pull failed (%s); %d failure(s), retrying in %.2f s", self.config.node_id, why,
                        self.schedule.backoff.failures, delay)
        if delay is not None and self.config.long_poll and not self.retry_pending:
            self.retry_pending = True
            self.wakeupAfter(timedelta(seconds=delay), Job.RETRY)

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
        self._ask_spawn()
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
        if process is None or workload.phase not in (Phase.ASSIGNED, Phase.LIVE) or (
                workload.running and self.pool.in_long_handler(workload, time.time(), LONG_HANDLER)):
            return  # no process, or its pid is not reported yet, or it is deep in a handler: fed when it reports
        tasks = self.table.next_tasks(workload, WINDOW if process.slot >= 0 else 1)
        if workload.phase is Phase.ASSIGNED:  # its start and first tasks in one message
            c, path = self.config, self.recovery.spill_path(process.incarnation)
            self.send(process.address, StartWorkloadClient(workload.workload_id, c.node_id, workload.app, self.sender,
                      self.myAddress, process.incarnation, process.slot, path, tasks, c.max_content_bytes))
            workload.phase = Phase.LIVE if process.pid is not None else Phase.STARTING
        elif tasks:
            self.send(process.address, RunTasks(tasks))
        else:
            return
        workload.last_active, workload.fed_at = time.monotonic(), time.time()
        first_check = self.recovery.sent(workload, tasks, self.config.task_deadline_s)
        if first_check is not None:
            self._watch(workload, first_check)

    def _ask_spawn(self) -> None:
        if not self.spawn_pending:
            self.spawn_pending = True
            self.wakeupAfter(TRANSPORT_PAUSE, Job.SPAWN)

    def _spawn_turn(self) -> None:
        self.spawn_pending = False
        plan = self.pool.turn(time.monotonic(), self.shutdown.active)
        for workload in plan.workloads if not self.exiting else ():
            self.pool.forked_for(workload, self.createActor(WorkloadClient))
            self._feed(workload)
        for _ in range(plan.warm if not self.exiting else 0):
            warm = self.pool.forked_warm(self.createActor(WorkloadClient))
            self.send(warm.address, PrewarmWorkloadClient(warm.incarnation, warm.slot, self.myAddress,
                                                          self.pool.preimport))
        if plan.again and not self.exiting:
            self._ask_spawn()

    def _do(self, decisions: Iterable[Decision]) -> None:
        """Carry out what a part decided."""
        for decision in decisions:
            match decision:
                case Answer(task=task, kind=kind, message=message):
                    self.recovery.answered(task.task_id)
                    self.send(self.sender, TaskRes.answer(task, error=TaskError(kind, message)))
                case Exit(process=process):
                    self.send(process.address, ActorExitRequest())
                case Kill(process=process):  # a stuck handler never reads an exit request
                    self.send(process.address, ActorExitRequest())
                    if self.pool.doom(process) and process.pid is not None:
                        self._signal_kill(process.pid)

    @staticmethod
    def _signal_kill(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # Reports from the node's own actors, and its timers.

    def receive_WorkloadClientStarted(self, message: WorkloadClientStarted, sender: ActorAddress) -> None:
        reported = self.pool.reported(message.incarnation, message.pid)
        if reported is not None and reported.kill:
            self._signal_kill(message.pid)
        elif reported is not None and reported.workload is not None:
            self._feed(reported.workload)
        self._ask_spawn()

    def receive_TasksDone(self, message: TasksDone, sender: ActorAddress) -> None:
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
        self._unpark()
        self._maybe_drain()
        self._pull_if_paused()

    def receive_SenderProgress(self, message: SenderProgress, sender: ActorAddress) -> None:
        self.recovery.confirmed(message.received)
        self.pushed, self.push_errors, self.unpushed = message.pushed, message.errors, message.buffered
        if not message.pushing and message.report_seq == self.status_seq:
            self._answer_status()
        self._pull_if_paused()

    def _pull_if_paused(self) -> None:
        if self.schedule.paused and self.config.long_poll:
            self._pull()

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        match message.payload:
            case Job.PULL if not (self.shutdown.active or self.exiting):
                self._pull()
                self._arm_tick()
            case Job.RETRY:
                self.retry_pending = False
                self._pull()
            case Job.HOUSEKEEPING if not self.exiting:
                self._housekeeping()
            case Job.SPAWN:
                self._spawn_turn()
            case Job.STATUS:
                self._answer_status()
            case Job.FLUSH:
                self._flush_sender()
            case CheckDeadline() as check:
                self._check_deadline(check)
            case OrphansDue(incarnation=incarnation):
                self._do(self.recovery.orphans(incarnation, ErrorKind.WORKLOAD_CLIENT_DIED,
                                               "the handler finished but its result did not leave its process"))
            case RestartDue(workload_id=workload_id, token=token):
                workload = self.table.restart_due(workload_id, token)
                if workload is not None and self._place(workload):
                    self._feed(workload)

    def _housekeeping(self) -> None:
        if self.schedule.lost(time.monotonic()):
            self._pull_failed(None, "no answer")  # periodic mode: a later tick pulls once the back-off allows
        if self.shutdown.overdue(time.time()):
            self._drain()
        else:
            for address in self.pool.gone_unnoticed(list(self.table), process_alive):
                log.warning("node %r: a WorkloadClient ended without notice", self.config.node_id)
                self._child_gone(address)
            for workload in self.table.idle_for(self.config.idle_timeout_s, time.monotonic()):
                log.info("workload %r idle: stopped", workload.workload_id)
                self._stop(workload)
            self._pull_if_paused()
            if self.pool.needs_refill():
                self._ask_spawn()  # the pool refills itself once a pause after warm deaths is over
        self.wakeupAfter(timedelta(seconds=HOUSEKEEPING_PERIOD), Job.HOUSEKEEPING)

    def _unpark(self) -> None:
        for workload in self.table.parked() if self.config.max_workloads is not None else ():
            if not self._place(workload):
                return
            self._feed(workload)

    # Processes that end, hang or are stopped.

    def receive_ChildActorExited(self, message: ChildActorExited, sender: ActorAddress) -> None:
        self._child_gone(message.childAddress)

    def _child_gone(self, address: ActorAddress) -> None:
        stopping = self.exiting or self.shutdown.active
        if address == self.sender:
            if not stopping:
                log.error("node %r: the Sender exited; starting a new one", self.config.node_id)
                self._start_sender()
        elif (warm := self.pool.warm_exited(address)) is not None:
            if not stopping and (module := self.pool.warm_died(time.monotonic())) is not None:
                log.warning("a warm WorkloadClient (pid %s) died importing %r ahead: no more imports ahead", warm.pid,
                            module)
        elif (retired := self.pool.retired_exited(address)) is not None:
            answers, died = self.recovery.retired_ended(retired, self.pool.board_state(retired))
            self.pool.deaths += died
            self._do(answers)
            self._ended(retired)
        elif (workload := self.table.by_address(address)) is not None:
            self.pool.deaths += 1
            answers, progressed = self.recovery.died(workload, self.pool.board_state(workload))
            log.log(logging.INFO if progressed and not answers else logging.WARNING,  # between tasks: Thespian's stop
                    "workload %r: WorkloadClient (pid %s) exited %s", workload.workload_id, workload.pid,
                    "in a handler" if answers else "between tasks" if progressed else "before it ran a task")
            self._do(answers)
            self._restart(workload, progressed)
            self._ended(workload)

    def _restart(self, workload: Workload, progressed: bool) -> None:
        plan = self.table.restart(workload, progressed, time.monotonic(), self.shutdown.active or self.exiting)
        if plan.gave_up:
            log.error("node %r: %s", self.config.node_id, plan.gave_up)
        self._do(plan.answers)
        if plan.workload is None:
            self._unpark()
        elif plan.delay > 0:
            self.wakeupAfter(timedelta(seconds=plan.delay), RestartDue(workload.workload_id, plan.workload.held))
        elif self._place(plan.workload):
            self._feed(plan.workload)
        self._maybe_drain()

    def _ended(self, workload: Workload) -> None:
        """Its process is gone: free its slots, then read back what it finished."""
        if self.pool.released(workload):
            self._ask_spawn()  # it never reported: a spawning slot is free
        self._read_back(workload.incarnation)

    def _read_back(self, incarnation: int | None) -> None:
        """Send on the results in spill files; later, answer what a process ran whose result never left it."""
        found = self.recovery.read_back(incarnation)
        if found:
            self.send(self.sender, TaskResGroup(tuple(found)))
        if incarnation is not None and self.recovery.owes(incarnation):
            self.wakeupAfter(timedelta(seconds=ORPHAN_GRACE), OrphansDue(incarnation))

    def _watch(self, workload: Workload, wait: float) -> None:
        workload.watched = True
        self.wakeupAfter(timedelta(seconds=max(0.0, wait)), CheckDeadline(workload.workload_id, workload.incarnation))

    def _check_deadline(self, check: CheckDeadline) -> None:
        workload = self.table.get(check.workload_id)
        if workload is None or workload.incarnation != check.incarnation or workload.process is None:
            return
        workload.watched = False
        verdict = Recovery.check(workload, self.pool.board_state(workload), time.time(), self.config.task_deadline_s)
        if isinstance(verdict, float):
            self._watch(workload, verdict)
        if not isinstance(verdict, Expired):
            return
        if workload.pid is not None and not process_alive(workload.pid):  # it died, and Thespian has not said so
            self._child_gone(workload.process.address)
            return
        log.warning("workload %r: task %s exceeded its %s s deadline; killing pid %s", workload.workload_id,
                    verdict.task.task_id, verdict.deadline, workload.pid)
        self.pool.deaths += 1
        self.pool.deadline_kills += 1
        self._do([*self.recovery.expired(workload, verdict, self.pool.board_state(workload)), Kill(workload.process)])
        self._read_back(workload.incarnation)
        self.pool.retire(workload)  # its ChildActorExited must not answer anything twice
        self._restart(workload, progressed=True)

    def _stop(self, workload: Workload, *answer: str) -> None:
        """Forget ``workload``; its process exits after its running task; its queued tasks get ``answer``."""
        self._do(self.table.stop(workload, *answer) if answer else [])
        self.table.forget(workload)
        self.pool.stop(workload)
        self._do([Exit(workload.process)] if workload.process is not None else [])

    # Requests of the program that runs the node.

    def receive_RegisterWorkload(self, message: RegisterWorkload, sender: ActorAddress) -> None:
        ok = isinstance(message.app, AppSpec)
        error = self.table.register(message.workload_id, message.app) if ok else \
            f"app must be an AppSpec, got {type(message.app).__name__}"
        self.send(sender, WorkloadRegistered(message.workload_id, error))

    def receive_StopWorkload(self, message: StopWorkload, sender: ActorAddress) -> None:
        """From the program: at once; the tasks it has not started get ``WorkloadStopped``."""
        workload = self.table.get(message.workload_id)
        if workload is not None:
            self._stop(workload, ErrorKind.WORKLOAD_STOPPED, "the workload was stopped")
            self._unpark()
        self.send(sender, WorkloadStopped(message.workload_id, workload is not None))

    def receive_GetNodeStatus(self, message: GetNodeStatus, sender: ActorAddress) -> None:
        """Answered by the Sender's first report after this request with no push unacknowledged (its counts
        then include every result the server stored), or after ``STATUS_WAIT`` with the last known ones."""
        self.status_waiters.append((sender, message.request_id))
        if self.shutdown.reply is not None:
            self._answer_status()
        elif len(self.status_waiters) == 1:
            self.status_seq += 1
            self.send(self.sender, ReportProgress(self.status_seq))
            self.wakeupAfter(timedelta(seconds=STATUS_WAIT), Job.STATUS)

    def _answer_status(self) -> None:
        waiters, self.status_waiters = self.status_waiters, []
        t, p, i, s = self.table, self.pool, self.intake, self.schedule
        for who, request_id in waiters:
            self.send(who, NodeStatus(
                request_id, self.config.node_id, t.live(), p.created, i.pulled, t.in_flight(), self.pushed,
                self.push_errors, i.duplicates, i.bad_input, s.pulls, s.failures, s.next_pull_at, len(t.parked()),
                p.stopped, p.deaths, p.deadline_kills, len(p.warm), self.unpushed, s.paused,
                tuple(w.pid for w in t if w.pid is not None), os.getpid(), os.getsid(0)))

    def receive_StopNode(self, message: StopNode, sender: ActorAddress) -> None:
        if self.shutdown.reply is not None:  # already stopped: say so again
            self.send(sender, self.shutdown.reply)
        elif self.shutdown.request(sender, message.timeout_s, time.time()):
            self.schedule.next_pull_at = None
            self._do(self.table.drop_waiting())
            self._maybe_drain()

    def _maybe_drain(self) -> None:
        if self.shutdown.active and all(w.idle for w in self.table):
            self._drain()

    def _drain(self) -> None:
        """Answer what is left, stop every WorkloadClient (killing stuck ones), then flush the Sender."""
        if self.shutdown.begin_draining():
            busy = [*self.table, *self.pool.retiring]
            self._do([*self.recovery.stop_all(busy, self.pool.board_state), *self.pool.stop_all()])
            self.table.workloads.clear()
            if self.recovery.unconfirmed:  # results may still be on their way from processes that just stopped
                self.wakeupAfter(timedelta(seconds=ORPHAN_GRACE), Job.FLUSH)
            else:
                self._flush_sender()

    def _flush_sender(self) -> None:
        self._read_back(None)
        self._do(self.recovery.orphans(None, ErrorKind.NODE_SHUTTING_DOWN,
                                       "the node stopped before the result of this task reached the Sender"))
        self.send(self.sender, FlushSender(time.time() + SENDER_FLUSH_TIMEOUT))

    def receive_SenderFlushed(self, message: SenderFlushed, sender: ActorAddress) -> None:
        waiters = self.shutdown.finished(self.config.node_id, message.pushed, message.unpushed)
        if waiters and message.unpushed:
            log.error("node %r stopped with %d result(s) the server never acknowledged", self.config.node_id,
                      message.unpushed)
        for who in waiters:
            self.send(who, self.shutdown.reply)

    def receive_ActorExitRequest(self, message: Any, sender: ActorAddress) -> None:
        # Thespian stops the children after this returns; they must not be replaced, and stuck ones must die.
        self.exiting = True
        if self.started:
            self._do([Kill(w.process) for w in [*self.table, *self.pool.retiring] if w.running and w.process])
        remove_spill_dir(self.spill_dir)
