"""``LeadClient``: one actor per node, the mediator between the server link, the parts and the processes.

It pulls ``TaskIns`` (``PullSchedule``), accepts them (``Intake``), queues each at its workload
(``WorkloadTable``); ``Dispatch`` decides which process gets which tasks (``ProcessPool``), ``Supervision``
what a process that ends or hangs is owed (``Recovery``) and how the node stops (``Shutdown``). Results go
from the WorkloadClient straight to the Sender; the LeadClient hears ``TasksDone``. New processes are forked
by the ``Spawner``, never by the LeadClient. The parts decide; ``_do`` is the one place that sends, kills
and sets timers.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from thespian.actors import ActorAddress, ActorExitRequest, ChildActorExited, WakeupMessage

from .. import control
from ..config import NodeConfig
from ..errors import ErrorKind
from ..link.protocol import LinkError, TaskInsBatch
from ..messages import TaskError, TaskRes
from ..runtime import listen_ahead
from ..runtime.actor_base import TRANSPORT_PAUSE, SafeActor
from ..runtime.proc import process_alive
from ..runtime.system import kill_process
from . import task_board, wire
from . import workload as w
from .dispatch import Dispatch
from .intake import Intake, PullSchedule
from .pool import ProcessPool
from .recovery import Recovery
from .routing import WorkloadTable
from .sender import Sender
from .shutdown import SENDER_FLUSH_TIMEOUT, Shutdown
from .spawner import Spawner
from .spill import make_spill_dir, remove_spill_dir
from .status import node_status
from .supervision import Supervision

__all__ = ["LeadClient"]

log = logging.getLogger(__name__)

HOUSEKEEPING_PERIOD = 0.5
"""Seconds between checks for lost pulls, unreported deaths, idle workloads and stop deadlines."""
READY_WAIT = 2.0
"""Longest ``StartLeadClient`` waits for the warm pool to be full before it is answered: a node that says it
started can give its first new workloads a process at once."""
STATUS_WAIT = 0.25
"""Longest a ``GetNodeStatus`` waits for the Sender to have no push unacknowledged before it is answered."""


class LeadClient(SafeActor):
    """Pulls tasks for one node and routes each to its workload's WorkloadClient."""

    config: NodeConfig
    server: ActorAddress
    sender: ActorAddress
    spawner: ActorAddress
    schedule: PullSchedule
    intake: Intake
    table: WorkloadTable
    pool: ProcessPool
    recovery: Recovery
    shutdown: Shutdown
    dispatch: Dispatch
    supervision: Supervision

    def __init__(self) -> None:
        super().__init__()
        self.started = self.spawn_pending = self.retry_pending = False
        self.spill_dir: str | None = None
        self.status_waiters: list[tuple[ActorAddress, int]] = []
        self.status_seq = 0
        self.progress = wire.SenderProgress(0, 0, 0)  # the Sender's latest report
        self.start_waiter: tuple[ActorAddress, control.LeadClientStarted] | None = None

    def receiveMessage(self, message: Any, sender: ActorAddress) -> None:
        if self.started or isinstance(message, (control.StartLeadClient, ActorExitRequest, ChildActorExited)):
            super().receiveMessage(message, sender)
        else:  # the parts exist once started: nothing else can be served before
            log.warning("LeadClient not started: ignored %s", type(message).__name__)
            if isinstance(message, control.StopNode):
                self.send(sender, control.NodeStopped("", 0, 0))

    def receive_StartLeadClient(self, message: control.StartLeadClient, sender: ActorAddress) -> None:
        config, server = message.config, message.server
        error = "this LeadClient is already started" if self.started else message.refusal()
        if error is None:
            self.config, self.server, self.started = config, server, True
            board = task_board.CURRENT = task_board.TaskBoard(max(4096, 2 * (config.max_workloads or 0)))  # pre-fork
            self.schedule, self.intake, self.table = (
                PullSchedule(config, time.time()),
                Intake(config),
                WorkloadTable(config),
            )
            self.pool = ProcessPool(board, config.warm_pool, config.default_app.module if config.default_app else None)
            self.spill_dir = make_spill_dir()
            self.recovery, self.shutdown = Recovery(self.spill_dir), Shutdown()
            self.dispatch = Dispatch(config, self.table, self.pool, self.recovery, self.myAddress)
            self.supervision = Supervision(
                self.table, self.pool, self.recovery, self.shutdown, config.task_deadline_s, process_alive
            )
            self.spawner = self.createActor(Spawner)  # now, while this process is small: every child shares it
            self._start_sender()
            self._do([w.Spawn(), w.Later(HOUSEKEEPING_PERIOD, w.Job.HOUSEKEEPING)])
            self._pull()
            if not config.long_poll:
                self._arm_tick()
            log.info("node %r started: %s", config.node_id, config.describe())
        node_id, next_pull = (config.node_id, self.schedule.next_pull_at) if self.started else ("", None)
        reply = control.LeadClientStarted(node_id, os.getpid(), os.getsid(0), next_pull or 0.0, error)
        if error is None and not self.pool.full():  # answered once the warm pool is full (or after READY_WAIT)
            self.start_waiter = (sender, reply)
            self._do([w.Later(READY_WAIT, w.Job.READY)])
        else:
            self.send(sender, reply)

    def _answer_start(self) -> None:
        if self.start_waiter is not None:
            (who, reply), self.start_waiter = self.start_waiter, None
            self.send(who, reply)

    def _start_sender(self) -> None:
        self.sender = self.dispatch.sender = self.createActor(Sender)
        c = self.config
        self.send(
            self.sender,
            wire.StartSender(
                c.node_id, self.server, self.myAddress, c.request_timeout, c.retry_backoff_max, c.max_unpushed
            ),
        )

    # Pull → route → feed.

    def _pull(self) -> None:
        was_paused = self.schedule.paused
        self.dispatch.settle_all()  # what finished frees room (processes report only when asked)
        room = self.schedule.room(self.table.in_flight(), self.progress.buffered)
        self._do(self.dispatch.want_reports(self.schedule.paused or self.shutdown.active))
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
        self._do([w.Later(self.schedule.next_tick(time.time()), w.Job.PULL)])

    def receive_TaskInsBatch(self, batch: TaskInsBatch, sender: ActorAddress) -> None:
        self.schedule.answered(batch.request_id)
        items, now = self.intake.items(batch.tasks), time.time()
        accept = lambda item: self.intake.accept(item, now, self.shutdown.active)
        routed = self.table.route_batch(items, accept, time.monotonic())
        if items is not batch.tasks:
            routed.dropped.insert(0, f"a TaskInsBatch whose tasks are a {type(batch.tasks).__name__}")
        for why in routed.dropped:
            log.error("node %r dropped malformed input from the server: %s", self.config.node_id, why)
        self._do(self.dispatch.batch(routed))
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
            self._do([w.Later(delay, w.Job.RETRY)])

    def _spawn_turn(self) -> None:
        self.spawn_pending = False
        exiting = self.supervision.exiting
        plan = self.pool.turn(time.monotonic(), self.shutdown.active or exiting)
        decisions: list[w.Decision] = []
        for workload in plan.workloads if not exiting else ():
            decisions += self.dispatch.forked(workload)
        for _ in range(plan.warm):
            warm = self.pool.forked_warm()
            prewarm = wire.PrewarmWorkloadClient(
                warm.incarnation, warm.slot, self.myAddress, self.pool.preimport, self.config.share_imports
            )
            decisions.append(w.Start(warm, prewarm))
        self._do(decisions)
        self._do([w.Spawn()] if plan.again and not exiting else [])

    def _do(self, decisions: Iterable[w.Decision]) -> None:
        """Carry out what the parts decided: the one place that sends, kills and sets timers."""
        decisions = list(decisions)
        starts = tuple((d.process.incarnation, d.message) for d in decisions if isinstance(d, w.Start))
        if starts:  # one message for all new processes, before anything that may follow them through the Spawner
            self.send(self.spawner, wire.SpawnWorkloadClients(starts, self.pool.imports_to_share()))
            self.pool.turn_sent(time.monotonic())
        for decision in decisions:
            match decision:
                case w.Answer(task=task, kind=kind, message=message):
                    self.recovery.answered(task.task_id)
                    self.send(self.sender, TaskRes.answer(task, error=TaskError(kind, message)))
                case w.Start():
                    pass  # sent above, all in one message
                case w.Send(address=address, message=message):
                    self.send(address, message)
                case w.Exit(process=process) | w.Kill(process=process):  # a stuck handler never reads the request
                    self._send_to(process, ActorExitRequest())
                    if isinstance(decision, w.Kill) and self.pool.doom(process) and process.pid is not None:
                        kill_process(process.pid)
                case w.Deliver(results=results):
                    self.send(self.sender, wire.TaskResGroup(results))
                case w.Later(delay=delay, payload=payload):
                    self.wakeupAfter(timedelta(seconds=max(0.0, delay)), payload)
                case w.Place(workload=workload):
                    self._do(self.dispatch.place(workload))
                case w.Unpark():
                    self._do(self.dispatch.unpark())
                case w.Spawn() if not self.spawn_pending:  # a turn once the transport has run
                    self.spawn_pending = True
                    self.wakeupAfter(TRANSPORT_PAUSE, w.Job.SPAWN)
                case w.Flush():
                    self.send(self.sender, wire.FlushSender(time.time() + SENDER_FLUSH_TIMEOUT))

    def _send_to(self, process: w.Process, message: Any) -> None:
        """To a process, directly once it has reported (its address), else through the Spawner."""
        if process.address is not None:
            self.send(process.address, message)
        else:
            self.send(self.spawner, wire.ForwardToChild(process.incarnation, message))

    # Reports from the node's own actors, and its timers.

    def receive_WorkloadClientStarted(self, message: wire.WorkloadClientStarted, sender: ActorAddress) -> None:
        decisions = self.dispatch.reported(message.incarnation, message.pid, sender)
        if decisions is None:  # it was killed before it could be: now it can
            kill_process(message.pid)
        self._do(decisions if decisions is not None else [w.Spawn()])
        if self.start_waiter is not None and self.pool.full():
            self._answer_start()

    def receive_TasksDone(self, message: wire.TasksDone, sender: ActorAddress) -> None:
        self.pool.imported(message.imported)
        self._do([*self.dispatch.done(message), *self.supervision.maybe_drain()])
        self._pull_if_paused()

    def receive_SpawnTurnDone(self, message: wire.SpawnTurnDone, sender: ActorAddress) -> None:
        if sender == self.spawner:  # not a late answer of a Spawner replaced since
            kill, decisions = self.dispatch.turn_done(message)
            for pid in kill:
                kill_process(pid)
            for _, address in message.addresses:  # their first message then finds the connection made
                listen_ahead.connect_ahead(self, address)
            self._do(decisions)

    def receive_AppImported(self, message: wire.AppImported, sender: ActorAddress) -> None:
        self.pool.imported(message.module)
        imports = self.pool.imports_to_share()
        if imports:  # now, not with the next spawning turn: a burst of new workloads then forks with it loaded
            self.send(self.spawner, wire.SpawnWorkloadClients((), imports))
            self._do([*self.dispatch.replace_stale_warm(), w.Spawn()])

    def receive_SenderProgress(self, message: wire.SenderProgress, sender: ActorAddress) -> None:
        self.recovery.confirmed(message.received)
        self.progress = message
        if not message.pushing and message.report_seq == self.status_seq:
            self._answer_status()
        self._do(self.supervision.maybe_drain())  # stopping: the tasks it took results of may be all that ran
        self._pull_if_paused()

    def _pull_if_paused(self) -> None:
        if self.schedule.paused and self.config.long_poll:
            self._pull()

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        match message.payload:
            case w.Job.PULL if not (self.shutdown.active or self.supervision.exiting):
                self._pull()
                self._arm_tick()
            case w.Job.RETRY:
                self.retry_pending = False
                self._pull()
            case w.Job.HOUSEKEEPING if not self.supervision.exiting:
                self._housekeeping()
            case w.Job.SPAWN:
                self._spawn_turn()
            case w.Job.STATUS:
                self._answer_status()
            case w.Job.FLUSH:
                self._do(self.supervision.flush())
            case w.Job.READY:
                self._answer_start()
            case w.CheckDeadline() as check:
                self._do(self.supervision.check_deadline(check, time.time(), time.monotonic()))
            case w.OrphansDue() as due:
                self._do(self.supervision.orphans_due(due))
            case w.RestartDue() as due:
                self._do(self.supervision.restart_due(due))

    def _housekeeping(self) -> None:
        if self.schedule.lost(time.monotonic()):
            self._pull_failed(None, "no answer")  # periodic mode: a later tick pulls once the back-off allows
        if self.shutdown.overdue(time.time()):
            self._do(self.supervision.drain())
        else:
            for incarnation in self.supervision.unnoticed():
                log.warning("node %r: a WorkloadClient ended without notice", self.config.node_id)
                self._do(self.supervision.process_ended(incarnation, time.monotonic()))
            self._do(self.dispatch.idle(time.monotonic()))
            self._do(self.dispatch.stalled(time.time()))
            self._pull_if_paused()
            self._do([w.Spawn()] if self.pool.needs_refill() else [])  # refills once a pause after deaths is over
        self._do([w.Later(HOUSEKEEPING_PERIOD, w.Job.HOUSEKEEPING)])

    def receive_WorkloadClientExited(self, message: wire.WorkloadClientExited, sender: ActorAddress) -> None:
        if sender == self.spawner:  # not a late notice of a Spawner replaced since
            self._do(self.supervision.process_ended(message.incarnation, time.monotonic()))

    def receive_ChildActorExited(self, message: ChildActorExited, sender: ActorAddress) -> None:
        stopping = self.supervision.exiting or self.shutdown.active
        if message.childAddress == self.spawner:
            if not stopping:  # its children's exit notices would come from it: treat them all as ended
                log.error(
                    "node %r: the Spawner exited; its WorkloadClients are stopped, a new one starts",
                    self.config.node_id,
                )
                self.spawner = self.createActor(Spawner)
                self._do(self.supervision.spawner_lost(time.monotonic()))
        elif message.childAddress == self.sender and not stopping:
            log.error("node %r: the Sender exited; starting a new one", self.config.node_id)
            self._start_sender()

    # Requests of the program that runs the node.

    def receive_RegisterWorkload(self, message: control.RegisterWorkload, sender: ActorAddress) -> None:
        error = self.table.register(message.workload_id, message.app)
        self.send(sender, control.WorkloadRegistered(message.workload_id, error))

    def receive_StopWorkload(self, message: control.StopWorkload, sender: ActorAddress) -> None:
        """From the program: at once; the tasks it has not started get ``WorkloadStopped``."""
        workload = self.table.get(message.workload_id)
        if workload is not None:
            self._do(self.dispatch.stop(workload, ErrorKind.WORKLOAD_STOPPED, "the workload was stopped"))
            self._do(self.dispatch.unpark())
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
            self._do([w.Later(STATUS_WAIT, w.Job.STATUS)])

    def _answer_status(self) -> None:
        waiters, self.status_waiters = self.status_waiters, []
        self.dispatch.settle_all()
        for who, request_id in waiters:
            self.send(who, node_status(request_id, self.table, self.pool, self.intake, self.schedule, self.progress))

    def receive_StopNode(self, message: control.StopNode, sender: ActorAddress) -> None:
        if self.shutdown.reply is not None:  # already stopped: say so again
            self.send(sender, self.shutdown.reply)
        elif self.shutdown.request(sender, message.timeout_s, time.time()):
            self.schedule.next_pull_at = None
            self._do([*self.dispatch.want_reports(True), *self.supervision.stop_requested()])

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
