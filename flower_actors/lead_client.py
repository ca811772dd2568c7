"""``LeadClient``: one actor per node that pulls tasks and routes them.

It pulls ``TaskIns`` from the server (every ``poll_interval`` on a drift-free
schedule, or continuously in long-poll mode), creates a ``WorkloadClient``
child the first time a workload appears, and forwards each task to it at
once, in one ``RunTasks`` message per WorkloadClient and batch (up to
``WINDOW`` tasks held by one process; more wait in the LeadClient's queue).
It never runs user code and never waits on a handler. Each WorkloadClient
shows on the shared ``TaskBoard`` which of its tasks it is running, so the
LeadClient always knows which task a process was running when it ended.
Results go from the WorkloadClient straight to the Sender; the LeadClient
only hears ``TasksDone``.

Faults, and what every accepted task gets:

- the WorkloadClient's process dies: its running task gets
  ``WorkloadClientDied``; results it finished but had not delivered are
  read from its spill file (``spill``); the tasks it had not started, and
  the workload's queued tasks, go to a fresh one;
- a handler runs past its deadline: ``DeadlineExceeded``, the process is
  SIGKILLed by pid (a blocked actor never reads ``ActorExitRequest``), and
  the tasks it had not started go to a fresh WorkloadClient;
- a process ends and Thespian never says so (several ending at once): the
  processes of busy workloads are checked every ``HOUSEKEEPING_PERIOD``;
- the server fails or does not answer: pulls back off exponentially
  (capped, with jitter) and resume by themselves;
- too much in flight or unpushed: pulling pauses until there is room.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import signal
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Deque, Dict, List, Optional, Tuple, Union

from thespian.actors import ActorAddress, ActorExitRequest, ChildActorExited, WakeupMessage

from . import task_board
from .actor_base import TRANSPORT_PAUSE, SafeActor
from .config import AppSpec, NodeConfig
from .control import (
    FlushSender,
    GetNodeStatus,
    LeadClientStarted,
    NodeStatus,
    NodeStopped,
    PrewarmWorkloadClient,
    RegisterWorkload,
    ReportProgress,
    SenderFlushed,
    SenderProgress,
    StartLeadClient,
    StartSender,
    StartWorkloadClient,
    StopNode,
    StopWorkload,
    RunTasks,
    TaskResGroup,
    TasksDone,
    WorkloadClientStarted,
    WorkloadRegistered,
    WorkloadStopped,
)
from .errors import ErrorKind
from .link import LinkError, PullTaskIns, TaskInsBatch
from .messages import TaskError, TaskIns, TaskRes, WorkloadId, task_ins_problem
from .restarts import RestartIntensity
from .sender import Sender
from .spill import make_spill_dir, read_spill, remove_spill_dir
from .system import process_alive
from .workload_client import WorkloadClient

__all__ = ["LeadClient"]

log = logging.getLogger(__name__)

WINDOW = 64
"""Most tasks one WorkloadClient holds (running or waiting in its process); more wait here."""
LONG_HANDLER = 0.005
"""A WorkloadClient whose handler has run longer than this gets its next tasks when it reports, not now.
Thespian reads a process's sockets only between handler calls, so a message to it would hold one of
the LeadClient's 20 transmit slots (Thespian's ``MAX_PENDING_TRANSMITS``) until the handler ends;
with 20 held, every other send of the LeadClient (tasks to idle processes, pulls) would wait."""
MAX_CONCURRENT_SPAWNS = 64
"""WorkloadClients starting at once; more wait. Thespian scans every send to a child that has not
connected yet against all such children, so an unbounded burst of spawns costs quadratic time."""
DEADLINE_POLL = 0.5
"""Longest gap between two deadline checks of a process that holds tasks with a deadline."""
SPAWN_TURN = 2
"""WorkloadClients forked per turn: a fork costs the LeadClient milliseconds, so between turns its
transport runs and it handles what arrived meanwhile (first tasks go to processes that just started)."""
HOUSEKEEPING_PERIOD = 0.5
"""Seconds between checks for lost pulls, unreported deaths, idle workloads and stop deadlines."""
BACKOFF_BASE = 0.1
"""First retry delay after a failed pull, doubled per failure up to ``retry_backoff_max``."""
ORPHAN_GRACE = 0.5
"""After a WorkloadClient's process ends, how long its results may still reach the Sender before
the tasks the Sender never reported are answered with an error."""
SENDER_FLUSH_TIMEOUT = 5.0
"""How long a stopping node waits for the Sender to push what it holds."""
GIVE_UP_FOR = 30.0
"""After a workload's WorkloadClients died too often without running a task (``RestartIntensity``),
how long its tasks are answered with an error at once before a fresh WorkloadClient is tried again."""
STATUS_WAIT = 0.25
"""Longest a ``GetNodeStatus`` waits for the Sender to have no push unacknowledged (its counts then include
every result the server stored) before it is answered with the last known counts."""

_TICK = "pull-tick"
_RETRY = "pull-retry"
_HOUSEKEEPING = "housekeeping"
_FLUSH_SENDER = "flush-sender"
_SPAWN = "spawn"
_STATUS = "status"


@dataclass(frozen=True)
class _OrderedStop:
    """A ``StopWorkload`` from the server, kept in the workload's queue in order with its tasks."""


_STOP = _OrderedStop()


@dataclass(frozen=True)
class _RestartDue:
    """Timer: a workload's restart delay (``RestartIntensity``) is over."""

    workload_id: WorkloadId
    token: int


@dataclass
class _Warm:
    """A WorkloadClient of the warm pool: started, not yet given a workload."""

    address: ActorAddress
    incarnation: int
    slot: int
    pid: Optional[int] = None


@dataclass(eq=False)
class _Workload:
    """What the LeadClient knows about one workload on this node."""

    workload_id: WorkloadId
    app: AppSpec
    address: Optional[ActorAddress] = None
    """``None`` while parked: waiting for a slot under ``max_workloads``."""
    pid: Optional[int] = None
    queue: Deque[Union[TaskIns, _OrderedStop]] = field(default_factory=deque)
    """Tasks waiting at the LeadClient, and the ordered stops between them."""
    stops: int = 0
    """How many ordered stops ``queue`` holds."""
    held: int = 0
    """Non-zero while it waits out a restart delay (the token of that timer): no process, none coming."""
    running: Dict[str, Tuple[int, TaskIns]] = field(default_factory=dict)
    """Tasks its WorkloadClient holds, in order: task id -> (sequence number in that process, task)."""
    last_active: float = field(default_factory=time.monotonic)
    incarnation: int = 0
    """Which WorkloadClient (each one the LeadClient creates has its own number)."""
    waiting_spawn: bool = False
    """Has a slot but waits for its process (too many are starting at once)."""
    kill_on_start: bool = False
    """Was killed before it reported its pid: SIGKILL it when it does."""
    slot: int = -1
    """Its slot on the task board (-1: none)."""
    sent: int = 0
    """Tasks sent to its current WorkloadClient (the sequence number of the last one)."""
    unstarted: bool = False
    """A process given to this workload that has not been sent its ``StartWorkloadClient`` yet.
    Start and first tasks go in one message: as two, the tasks arrived 6-12 ms after the start in the
    latency benchmark (forward p99 10 ms; 2.3 ms in one message)."""
    fed_at: float = 0.0
    """When tasks were last sent to it (wall clock)."""
    watched: bool = False
    """A deadline check of its process is pending."""
    stop_reason: Tuple[str, str] = (ErrorKind.WORKLOAD_STOPPED, "the workload was stopped")
    """What tasks it never started get once it was told to exit."""

    @property
    def idle(self) -> bool:
        return not self.running and len(self.queue) == self.stops

    @property
    def queued(self) -> int:
        """Tasks waiting at the LeadClient (ordered stops not counted)."""
        return len(self.queue) - self.stops

    def take_queue(self) -> List[Union[TaskIns, _OrderedStop]]:
        """Empty the queue and return what it held."""
        items = list(self.queue)
        self.queue.clear()
        self.stops = 0
        return items

    def extend_queue(self, items: List[Union[TaskIns, _OrderedStop]]) -> None:
        self.queue.extend(items)
        self.stops += sum(1 for item in items if item is _STOP)


def _tasks(items: Any) -> List[TaskIns]:
    """The tasks among queue items (ordered stops left out)."""
    return [item for item in items if isinstance(item, TaskIns)]


class LeadClient(SafeActor):
    """Pulls tasks for one node and routes each to its workload's WorkloadClient."""

    def __init__(self) -> None:
        super().__init__()
        self.config: Optional[NodeConfig] = None
        self.server: Optional[ActorAddress] = None
        self.sender: Optional[ActorAddress] = None
        self.apps: Dict[WorkloadId, AppSpec] = {}
        self.workloads: Dict[WorkloadId, _Workload] = {}
        self.retiring: List[_Workload] = []  # told to exit; answered if they die holding a task
        self.spawning: Dict[int, _Workload] = {}  # incarnation -> workload whose process has not reported yet
        self.spawn_queue: Deque[_Workload] = deque()
        self.incarnations = itertools.count(1)
        # Sent to a WorkloadClient, result not yet reported by the Sender: task id -> (incarnation, task).
        self.unconfirmed: Dict[str, Tuple[int, TaskIns]] = {}
        self.warm: Deque[_Warm] = deque()  # started and reported their pid
        self.warming: Dict[int, _Warm] = {}  # incarnation -> started, pid not reported yet
        self.spawn_pending = False
        self.board: Optional[task_board.TaskBoard] = None
        self.spill_dir: Optional[str] = None
        self.seen: "OrderedDict[str, None]" = OrderedDict()
        self.anchor = 0.0
        self.next_pull_at: Optional[float] = None
        self.pull_request = 0
        self.pull_outstanding: Optional[Tuple[int, float]] = None  # request id, monotonic send time
        self.pull_failures = 0
        self.retry_at = 0.0  # monotonic; no pull before
        self.retry_pending = False
        self.paused = False
        self.unpushed = 0
        self.stopping: Optional[Tuple[ActorAddress, float]] = None  # who asked, deadline (wall clock)
        self.stop_finished = False
        self.stop_waiters: List[ActorAddress] = []
        self.stopped: Optional[NodeStopped] = None
        self.exiting = False
        self.restarts: Dict[WorkloadId, RestartIntensity] = {}  # workloads whose processes died without progress
        self.given_up: Dict[WorkloadId, Tuple[float, str]] = {}  # workload -> (monotonic until, why)
        self.restart_tokens = itertools.count(1)
        self.preimport: Optional[str] = None  # module the warm pool imports ahead (None: none, or it killed one)
        self.warm_restarts = RestartIntensity()
        self.warm_paused_until = 0.0  # monotonic: no warm process is started before
        self.status_waiters: List[Tuple[ActorAddress, int]] = []  # (who, request id) of GetNodeStatus
        self.results_pushed = 0  # the Sender's counts, as last reported
        self.results_with_errors = 0
        # Each counter is counted in one place; NodeStatus documents them.
        self.counters = dict.fromkeys(
            ("pulls", "pull_failures", "pulled", "duplicates", "bad_input", "created", "stopped", "deaths",
             "deadline_kills"),
            0,
        )

    # Start and configuration.

    def receive_StartLeadClient(self, message: StartLeadClient, sender: ActorAddress) -> None:
        if self.config is not None:
            self.send(sender, self._started(error="this LeadClient is already started"))
            return
        if not isinstance(message.config, NodeConfig):
            self.send(sender, self._started(error=f"config must be a NodeConfig, got {type(message.config).__name__}"))
            return
        if not isinstance(message.server, ActorAddress):
            self.send(sender, self._started(error=f"server must be an ActorAddress, got {type(message.server).__name__}"))
            return
        self.config = message.config
        self.server = message.server
        # Before the first fork, so every WorkloadClient shares it.
        self.board = task_board.CURRENT = task_board.TaskBoard(max(4096, 2 * (message.config.max_workloads or 0)))
        self.apps = message.config.workload_specs
        self.preimport = message.config.default_app.ref.partition(":")[0] if message.config.default_app else None
        self.spill_dir = make_spill_dir()
        self._start_sender()
        self.anchor = time.time()
        self._ask_spawn()
        self._pull()
        if not message.config.long_poll:
            self._arm_tick()
        self.wakeupAfter(timedelta(seconds=HOUSEKEEPING_PERIOD), _HOUSEKEEPING)
        self.send(sender, self._started())
        log.info("node %r started (%s)", message.config.node_id, "long-poll" if message.config.long_poll else "periodic")

    def _start_sender(self) -> None:
        assert self.config is not None and self.server is not None
        self.sender = self.createActor(Sender)
        c = self.config
        self.send(
            self.sender, StartSender(c.node_id, self.server, self.myAddress, c.request_timeout, c.retry_backoff_max)
        )

    def _started(self, error: Optional[str] = None) -> LeadClientStarted:
        node_id = self.config.node_id if self.config else ""
        return LeadClientStarted(node_id, os.getpid(), os.getsid(0), self.next_pull_at or 0.0, error)

    def receive_RegisterWorkload(self, message: RegisterWorkload, sender: ActorAddress) -> None:
        error = None
        if not isinstance(message.app, AppSpec):
            error = f"app must be an AppSpec, got {type(message.app).__name__}"
        elif message.workload_id in self.workloads:
            error = f"workload {message.workload_id!r} is running; stop it (StopWorkload) before changing its app"
        else:
            self.apps[message.workload_id] = message.app
            self.given_up.pop(message.workload_id, None)  # a new app is worth a fresh try at once
        self.send(sender, WorkloadRegistered(message.workload_id, error))

    # Pulling.

    def _arm_tick(self) -> None:
        """Schedule the next periodic pull at anchor + k * interval (no drift, one pending timer)."""
        assert self.config is not None
        interval = self.config.poll_interval
        now = time.time()
        k = math.floor((now - self.anchor) / interval) + 1
        self.next_pull_at = self.anchor + k * interval
        self.wakeupAfter(timedelta(seconds=max(0.0, self.next_pull_at - now)), _TICK)

    def _in_flight(self) -> int:
        return sum(w.queued + len(w.running) for w in self.workloads.values())

    def _room(self) -> int:
        """How many tasks the next pull may take (0: saturated)."""
        assert self.config is not None
        if self.unpushed >= self.config.max_unpushed:
            return 0
        return max(0, min(self.config.max_pull_batch, self.config.max_in_flight - self._in_flight()))

    def _pull(self) -> None:
        config = self.config
        if config is None or self.server is None or self.stopping is not None or self.exiting:
            return
        if self.pull_outstanding is not None or time.monotonic() < self.retry_at:
            return
        room = self._room()
        if room <= 0:
            if not self.paused:
                log.warning("node %r saturated (%d in flight, %d unpushed): pulling paused",
                            config.node_id, self._in_flight(), self.unpushed)
            self.paused = True
            return
        self.paused = False
        self.pull_request += 1
        self.pull_outstanding = (self.pull_request, time.monotonic())
        self.counters["pulls"] += 1
        wait = config.long_poll_wait if config.long_poll else 0.0
        self.send(self.server, PullTaskIns(config.node_id, self.pull_request, room, wait))

    def _pull_failed(self, why: str) -> None:
        assert self.config is not None
        self.pull_outstanding = None
        self.pull_failures += 1
        self.counters["pull_failures"] += 1
        delay = min(self.config.retry_backoff_max, BACKOFF_BASE * 2 ** min(self.pull_failures - 1, 30))
        delay *= random.uniform(0.5, 1.0)  # jitter: nodes that failed together do not retry together
        self.retry_at = time.monotonic() + delay
        if self.pull_failures in (1, 10) or self.pull_failures % 100 == 0:
            log.warning("node %r: pull failed (%s); %d failure(s), retrying in %.2f s",
                        self.config.node_id, why, self.pull_failures, delay)
        if self.config.long_poll and not self.retry_pending:
            self.retry_pending = True
            self.wakeupAfter(timedelta(seconds=delay), _RETRY)

    def _pull_lost(self) -> bool:
        if self.pull_outstanding is None or self.config is None:
            return False
        wait = self.config.long_poll_wait if self.config.long_poll else 0.0
        return time.monotonic() - self.pull_outstanding[1] > wait + self.config.request_timeout

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        payload = message.payload
        if payload == _TICK:
            if self.stopping is None and not self.exiting:
                self._pull()
                self._arm_tick()
        elif payload == _RETRY:
            self.retry_pending = False
            self._pull()
        elif payload == _HOUSEKEEPING:
            self._housekeeping()
        elif isinstance(payload, tuple) and len(payload) == 3 and payload[0] == "deadline":
            self._deadline(payload[1], payload[2])
        elif isinstance(payload, tuple) and len(payload) == 2 and payload[0] == "orphans":
            self._answer_orphans(payload[1], ErrorKind.WORKLOAD_CLIENT_DIED,
                                 "the handler finished but its result did not leave the process before it ended")
        elif isinstance(payload, _RestartDue):
            self._restart_due(payload)
        elif payload == _SPAWN:
            self._spawn_turn()
        elif payload == _STATUS:
            self._answer_status()
        elif payload == _FLUSH_SENDER:
            self._flush_sender()

    def _ended(self, workload: _Workload) -> None:
        """A WorkloadClient's process is gone: send on the results in its spill file; later, answer
        what it ran whose result the Sender never got."""
        self._recover(self._spill_path(workload.incarnation))
        if any(inc == workload.incarnation for inc, _ in self.unconfirmed.values()):
            self.wakeupAfter(timedelta(seconds=ORPHAN_GRACE), ("orphans", workload.incarnation))

    def _spill_path(self, incarnation: int) -> Optional[str]:
        return os.path.join(self.spill_dir, str(incarnation)) if self.spill_dir else None

    def _recover(self, *paths: Optional[str]) -> None:
        """Send on each result in these spill files whose delivery the Sender has not reported."""
        for path in paths:
            spilled = read_spill(path) if path else []
            found = [r for r in spilled if self.unconfirmed.pop(r.ins_id, None) is not None]
            if found and self.sender is not None:
                self.send(self.sender, TaskResGroup(tuple(found)))

    def _answer_orphans(self, incarnation: Optional[int], kind: str, reason: str) -> None:
        """Answer unconfirmed tasks of ``incarnation`` (all, if ``None``); the Sender drops a second answer."""
        for inc, task in list(self.unconfirmed.values()):
            if incarnation is None or inc == incarnation:
                self._answer_error(task, kind, reason)

    def _housekeeping(self) -> None:
        if self.exiting:
            return
        if self._pull_lost():
            self._pull_failed("no answer")  # periodic mode: a later tick pulls once the back-off allows
        if self.stopping is not None and time.time() >= self.stopping[1]:
            self._finish_stop()
        else:
            self._find_unreported_deaths()
            self._stop_idle_workloads()
            if self.paused and self.config is not None and self.config.long_poll:
                self._pull()
            if self.config is not None and len(self.warm) + len(self.warming) < self.config.warm_pool:
                self._ask_spawn()  # the pool refills itself once a pause after warm deaths is over
        self.wakeupAfter(timedelta(seconds=HOUSEKEEPING_PERIOD), _HOUSEKEEPING)

    def receive_TaskInsBatch(self, batch: TaskInsBatch, sender: ActorAddress) -> None:
        if self.pull_outstanding is not None and batch.request_id == self.pull_outstanding[0]:
            self.pull_outstanding = None
            self.pull_failures = 0
            self.retry_at = 0.0
        now = time.time()
        items = batch.tasks if isinstance(batch.tasks, (tuple, list)) else ()
        if not isinstance(batch.tasks, (tuple, list)):
            self._bad_input(f"a TaskInsBatch whose tasks are a {type(batch.tasks).__name__}")
        # Items are routed in order (a stop between two tasks stays between them); then one message per
        # WorkloadClient for the whole batch, first to workloads that had one (spawning costs milliseconds).
        existing: Dict[WorkloadId, _Workload] = {}
        created: Dict[WorkloadId, _Workload] = {}
        for item in items:
            if isinstance(item, StopWorkload):
                self._route_stop(item.workload_id, created if item.workload_id in created else existing)
                continue
            task = self._accept(item, now)
            if task is not None:
                new = task.workload_id not in self.workloads or task.workload_id in created
                self._route(task, created if new else existing)
        for workload in [*existing.values(), *created.values()]:
            self._feed(workload)
        if self.config is not None and self.config.long_poll:
            self._pull()

    def receive_LinkError(self, message: LinkError, sender: ActorAddress) -> None:
        if self.pull_outstanding is not None and message.request_id == self.pull_outstanding[0]:
            self._pull_failed(f"server error: {message.message}")

    # Routing.

    def _bad_input(self, what: str) -> None:
        self.counters["bad_input"] += 1
        log.error("node %r dropped malformed input from the server: %s", self.config and self.config.node_id, what)

    def _accept(self, item: Any, now: float) -> Optional[TaskIns]:
        """Validate and deduplicate one pulled item: the task to route, or ``None`` (answered or dropped)."""
        assert self.config is not None
        problem = task_ins_problem(item)
        if problem is None and item.node_id != self.config.node_id:
            problem = f"task is addressed to node {item.node_id!r}, this is node {self.config.node_id!r}"
        if problem is None and len(item.payload) > self.config.max_content_bytes:
            problem = f"content of {len(item.payload)} bytes exceeds this node's limit of {self.config.max_content_bytes}"
        task_id = getattr(item, "task_id", None)
        if isinstance(task_id, str) and task_id:
            if task_id in self.seen:
                self.counters["duplicates"] += 1
                log.info("task %s pulled twice; handled once", task_id)
                return None
            self.seen[task_id] = None
            if len(self.seen) > self.config.dedupe_window:
                self.seen.popitem(last=False)
        if problem is not None:
            if isinstance(item, TaskIns) and isinstance(task_id, str) and task_id:
                self._answer_error(item, ErrorKind.BAD_TASK, problem)
            else:
                self._bad_input(problem)
            return None
        self.counters["pulled"] += 1
        task = replace(item, pulled_at=now)
        if self.stopping is not None:
            self._answer_error(task, ErrorKind.NODE_SHUTTING_DOWN, "the node is shutting down")
            return None
        return task

    def _route(self, task: TaskIns, touched: Dict[WorkloadId, _Workload]) -> None:
        """Queue ``task`` at its workload (creating the WorkloadClient if needed); the caller feeds ``touched``."""
        assert self.config is not None
        workload = self.workloads.get(task.workload_id)
        if workload is None:
            given_up = self._given_up(task.workload_id)
            if given_up is not None:
                self._answer_error(task, ErrorKind.WORKLOAD_CLIENT_DIED, given_up)
                return
            app = self.apps.get(task.workload_id, self.config.default_app)
            if app is None:
                self._answer_error(
                    task,
                    ErrorKind.UNKNOWN_WORKLOAD,
                    f"node {self.config.node_id!r} has no app for workload {task.workload_id!r} and no default app",
                )
                return
            workload = _Workload(task.workload_id, app)
            self.workloads[task.workload_id] = workload
            self._place(workload)
        workload.queue.append(task)
        touched[task.workload_id] = workload

    def _route_stop(self, workload_id: WorkloadId, touched: Dict[WorkloadId, _Workload]) -> None:
        """An ordered stop: the tasks before it finish in the current WorkloadClient, those after it get a fresh one."""
        workload = self.workloads.get(workload_id)
        if workload is None:
            return  # no WorkloadClient: the next task starts a fresh one anyway
        workload.queue.append(_STOP)
        workload.stops += 1
        touched[workload_id] = workload

    def _given_up(self, workload_id: WorkloadId) -> Optional[str]:
        """Why ``workload_id``'s tasks are answered with an error at once, or ``None``."""
        entry = self.given_up.get(workload_id)
        if entry is None:
            return None
        if time.monotonic() >= entry[0]:
            del self.given_up[workload_id]
            return None
        return entry[1]

    def _live(self) -> int:
        return sum(1 for w in self.workloads.values() if w.address is not None or w.waiting_spawn)

    @staticmethod
    def _without_process(workload: _Workload) -> bool:
        """No process, and none coming: parked under the cap, or waiting out a restart delay."""
        return workload.address is None and not workload.waiting_spawn

    @classmethod
    def _parked(cls, workload: _Workload) -> bool:
        return cls._without_process(workload) and not workload.held

    def _place(self, workload: _Workload) -> None:
        """Give ``workload`` a process now if the cap allows (stopping an idle one if needed); else park it."""
        cap = self.config.max_workloads if self.config else None
        if cap is not None and self._live() >= cap and not self._evict_idle():
            return  # parked until a WorkloadClient becomes idle
        self._spawn(workload)

    def _evict_idle(self) -> bool:
        """Stop the least recently used idle WorkloadClient; False if none is idle."""
        idle = [w for w in self.workloads.values() if w.address is not None and w.idle]
        if not idle:
            return False
        victim = min(idle, key=lambda w: w.last_active)
        log.info("workload %r stopped to make room (max_workloads)", victim.workload_id)
        self._retire(victim)
        return True

    def _unpark(self) -> None:
        """Give parked workloads a process while the cap allows (workloads are parked only under a cap)."""
        cap = self.config.max_workloads if self.config else None
        if cap is None:
            return
        for workload in [w for w in self.workloads.values() if self._parked(w)]:
            if self._live() >= cap and not self._evict_idle():
                return
            self._spawn(workload)
            self._feed(workload)

    def _spawn(self, workload: _Workload) -> None:
        """Give the workload a warm WorkloadClient now, or queue it for the next spawning turn."""
        assert self.config is not None and self.sender is not None
        if self.warm:
            warm = self.warm.popleft()
            workload.waiting_spawn = False
            workload.incarnation, workload.slot, workload.address, workload.pid = (
                warm.incarnation, warm.slot, warm.address, warm.pid)
            workload.sent = 0
            workload.unstarted = True  # started by the next _feed, with the workload's first tasks
            self.counters["created"] += 1
        elif not workload.waiting_spawn:
            workload.waiting_spawn = True
            self.spawn_queue.append(workload)
        self._ask_spawn()

    def _create(self, workload: _Workload) -> None:
        """Fork a WorkloadClient for ``workload`` (it reports its pid with ``WorkloadClientStarted``)."""
        workload.waiting_spawn = False
        workload.incarnation = next(self.incarnations)
        workload.slot = self.board.allocate() if self.board is not None else -1
        workload.sent = 0
        workload.address = self.createActor(WorkloadClient)
        workload.pid = None
        self.spawning[workload.incarnation] = workload
        self.counters["created"] += 1
        workload.unstarted = True
        self._feed(workload)  # its start and first tasks, in one message

    def _start_message(self, workload: _Workload) -> StartWorkloadClient:
        assert self.config is not None
        return StartWorkloadClient(
            workload.workload_id, self.config.node_id, workload.app, self.sender, self.myAddress,
            workload.incarnation, workload.slot, self._spill_path(workload.incarnation),
            max_result_bytes=self.config.max_content_bytes,
        )

    def _ask_spawn(self) -> None:
        """Take a spawning turn once the transport has run (see ``SPAWN_TURN``)."""
        if not self.spawn_pending and self.config is not None:
            self.spawn_pending = True
            self.wakeupAfter(TRANSPORT_PAUSE, _SPAWN)

    def _starting(self) -> int:
        return len(self.spawning) + len(self.warming)

    def _spawn_turn(self) -> None:
        """Fork up to ``SPAWN_TURN`` WorkloadClients: first for waiting workloads, then for the warm pool."""
        self.spawn_pending = False
        config = self.config
        if config is None or self.exiting:
            return
        budget = SPAWN_TURN
        while budget and self.spawn_queue and self._starting() < MAX_CONCURRENT_SPAWNS:
            workload = self.spawn_queue.popleft()
            if workload.waiting_spawn and self.workloads.get(workload.workload_id) is workload:
                self._create(workload)
                budget -= 1
        while (budget and not self.spawn_queue and self.stopping is None and time.monotonic() >= self.warm_paused_until
               and len(self.warm) + len(self.warming) < config.warm_pool and self._starting() < MAX_CONCURRENT_SPAWNS):
            warm = _Warm(self.createActor(WorkloadClient), next(self.incarnations),
                         self.board.allocate() if self.board is not None else -1)
            self.warming[warm.incarnation] = warm
            self.send(warm.address, PrewarmWorkloadClient(warm.incarnation, warm.slot, self.myAddress, self.preimport))
            budget -= 1
        if not budget:
            self._ask_spawn()  # more may be due: another turn once the waiting messages are handled

    def _feed(self, workload: _Workload) -> None:
        """Send queued tasks, in one message, to a started WorkloadClient with room (see ``WINDOW``).

        Without a slot on the task board the LeadClient could not tell which
        task a process was running, so such a process holds one at a time.
        """
        if workload.stops and not workload.running and workload.queue[0] is _STOP:
            self._honour_stop(workload)
            return
        if workload.pid is None and not workload.unstarted:
            return  # started, and its pid not reported yet: it gets more tasks once it reports
        room = (WINDOW if workload.slot >= 0 else 1) - len(workload.running)
        if room <= 0 or (workload.running and self._in_long_handler(workload)):
            room = 0
        queue = workload.queue
        taken: List[TaskIns] = []
        while queue and len(taken) < room:
            item = queue[0]
            if not isinstance(item, TaskIns):
                break  # an ordered stop: what follows it waits until the tasks before it are done
            queue.popleft()
            taken.append(item)
        tasks = tuple(taken)
        if workload.unstarted:  # a warm process: its start and first tasks in one message
            workload.unstarted = False
            self.send(workload.address, replace(self._start_message(workload), tasks=tasks))
        elif tasks:
            self.send(workload.address, RunTasks(tasks))
        else:
            return
        for task in tasks:
            workload.sent += 1
            workload.running[task.task_id] = (workload.sent, task)
            self.unconfirmed[task.task_id] = (workload.incarnation, task)
        workload.last_active = time.monotonic()
        workload.fed_at = time.time()
        self._arm_deadline(workload, tasks)

    def _honour_stop(self, workload: _Workload) -> None:
        """Its next item is an ordered stop and its process holds no task: the process exits (its state with
        it) and what follows the stop goes to a fresh WorkloadClient."""
        workload.queue.popleft()
        workload.stops -= 1
        if self._without_process(workload):  # no process since the last stop or death: no state to drop
            self._feed(workload)
            return
        rest = workload.take_queue()
        self._retire(workload)
        if rest:
            fresh = _Workload(workload.workload_id, self.apps.get(workload.workload_id, workload.app))
            self.workloads[workload.workload_id] = fresh
            fresh.extend_queue(rest)
            self._place(fresh)
            self._feed(fresh)

    def _board_state(self, workload: _Workload) -> Optional[Tuple[int, float, int]]:
        """(started seq, started at, finished seq) of ``workload``'s process; ``None`` without a board slot."""
        return self.board.read(workload.slot) if self.board is not None else None

    def _in_long_handler(self, workload: _Workload) -> bool:
        """Whether ``workload``'s process has been in one handler for over ``LONG_HANDLER`` seconds."""
        state = self._board_state(workload)
        if state is None:
            return False
        started, started_at, finished = state
        return started > finished and time.time() - started_at > LONG_HANDLER

    def _arm_deadline(self, workload: _Workload, tasks: Tuple[TaskIns, ...]) -> None:
        """Watch ``workload``'s process if one of ``tasks`` (just sent to it) has a deadline."""
        if workload.watched or not any(self._deadline_of(task, workload) for task in tasks):
            return
        workload.watched = True
        wait = min(DEADLINE_POLL, min(self._deadline_of(task, workload) or DEADLINE_POLL for task in tasks))
        self.wakeupAfter(timedelta(seconds=wait), ("deadline", workload.workload_id, workload.incarnation))

    def _answer_error(self, task: TaskIns, kind: str, message: str) -> None:
        self.unconfirmed.pop(task.task_id, None)
        if self.sender is not None:
            self.send(self.sender, TaskRes.answer(task, error=TaskError(kind, message)))

    # Reports from children.

    def receive_WorkloadClientStarted(self, message: WorkloadClientStarted, sender: ActorAddress) -> None:
        warm = self.warming.pop(message.incarnation, None)
        if warm is not None:
            warm.pid = message.pid
            self.warm.append(warm)
            self._ask_spawn()
            return
        workload = self.spawning.pop(message.incarnation, None)
        if workload is not None:
            workload.pid = message.pid
            if workload.kill_on_start:
                self._kill(workload)
            else:
                self._feed(workload)
        self._ask_spawn()

    def receive_TasksDone(self, message: TasksDone, sender: ActorAddress) -> None:
        workload = self.workloads.get(message.workload_id)
        live = workload is not None and workload.incarnation == message.incarnation
        if message.ins_ids:
            self.restarts.pop(message.workload_id, None)  # it runs tasks: earlier deaths no longer count
        if not live:
            workload = next((r for r in self.retiring if r.incarnation == message.incarnation), None)
        if workload is not None:
            for ins_id in message.ins_ids:
                workload.running.pop(ins_id, None)
            workload.last_active = time.monotonic()
            if live:
                self._feed(workload)
        self._unpark()
        if self.stopping is not None:
            self._maybe_finish_stop()
        elif self.paused and self.config is not None and self.config.long_poll:
            self._pull()

    def receive_SenderProgress(self, message: SenderProgress, sender: ActorAddress) -> None:
        for ins_id in message.received:
            self.unconfirmed.pop(ins_id, None)
        self.results_pushed = message.pushed
        self.results_with_errors = message.errors
        self.unpushed = message.buffered
        if not message.pushing:
            self._answer_status()
        if self.paused and self.config is not None and self.config.long_poll:
            self._pull()

    def receive_ChildActorExited(self, message: ChildActorExited, sender: ActorAddress) -> None:
        self._child_gone(message.childAddress)

    def _find_unreported_deaths(self) -> None:
        """Handle processes holding tasks that ended without a ``ChildActorExited``.

        Thespian misses some deaths (several children ending at once): their
        tasks would wait forever. The process of a busy workload is checked
        every ``HOUSEKEEPING_PERIOD``; a late notice finds nothing to do.
        """
        for workload in [*self.workloads.values(), *self.retiring]:
            if workload.running and self._gone_unnoticed(workload):
                log.warning("workload %r: WorkloadClient (pid %s) ended without notice", workload.workload_id,
                            workload.pid)
        for warm in list(self.warm):
            if warm.pid is not None and not process_alive(warm.pid):
                log.warning("warm WorkloadClient (pid %s) ended without notice", warm.pid)
                self._child_gone(warm.address)

    def _gone_unnoticed(self, workload: _Workload) -> bool:
        """If ``workload``'s process has ended, handle it as if Thespian had said so, and return True."""
        if workload.pid is None or workload.address is None or process_alive(workload.pid):
            return False
        self._child_gone(workload.address)
        return True

    def _child_gone(self, address: ActorAddress) -> None:
        if address == self.sender:
            if self.exiting or self.stopping is not None:
                return
            log.error("node %r: the Sender exited; starting a new one", self.config and self.config.node_id)
            self._start_sender()
            return
        for pool in (list(self.warm), list(self.warming.values())):
            for warm in pool:
                if warm.address == address:  # a warm process died before it was used
                    if warm in self.warm:
                        self.warm.remove(warm)
                    self.warming.pop(warm.incarnation, None)
                    if self.board is not None:
                        self.board.release(warm.slot)
                    self._warm_died(warm)
                    return
        for retired in list(self.retiring):
            if retired.address == address:
                self.retiring.remove(retired)
                running = self._split_running(retired)
                if running is not None:  # asked to exit after its task, it died in it
                    self.counters["deaths"] += 1
                    self._answer_died(retired, running)
                for task in _tasks(retired.take_queue()):  # it was told to exit before it started these
                    self._answer_error(task, *retired.stop_reason)
                self._forget_spawn(retired)
                self._ended(retired)
                return
        for workload in list(self.workloads.values()):
            if workload.address == address:
                self._died(workload)
                self._forget_spawn(workload)
                self._ended(workload)
                return

    def _warm_died(self, warm: _Warm) -> None:
        """A warm process died before it was used: stop importing ahead, and refill the pool only with back-off."""
        self.counters["deaths"] += 1
        if self.exiting or self.stopping is not None:
            return
        if self.preimport is not None:
            log.warning("a warm WorkloadClient (pid %s) died while importing %r ahead; the warm pool no longer "
                        "imports it", warm.pid, self.preimport)
            self.preimport = None
        now = time.monotonic()
        delay = self.warm_restarts.died(now)
        if delay is None:
            delay = GIVE_UP_FOR
            log.error("warm WorkloadClients keep dying; the warm pool is not refilled for %.0f s", delay)
        self.warm_paused_until = now + delay  # housekeeping asks for a spawning turn again

    def _forget_spawn(self, workload: _Workload) -> None:
        """A process exited: free its board slot; if it never reported, it no longer counts as starting."""
        if self.board is not None and workload.slot >= 0:
            self.board.release(workload.slot)
            workload.slot = -1
        if self.spawning.pop(workload.incarnation, None) is not None:
            self._ask_spawn()

    def _died(self, workload: _Workload) -> None:
        """A WorkloadClient's process ended on its own: answer its running task, restart the rest.

        It made progress if it started a task; one that died before (while
        loading its app, say) counts towards the workload's restart intensity.
        """
        self.counters["deaths"] += 1
        state = self._board_state(workload)
        progressed = state is None or state[0] > 0
        task = self._split_running(workload)
        if task is not None:
            self._answer_died(workload, task)
        elif progressed:  # between tasks: nothing is lost (Thespian's shutdown stops children before parents)
            log.info("workload %r: WorkloadClient (pid %s) exited between tasks", workload.workload_id, workload.pid)
        else:
            log.warning("workload %r: WorkloadClient (pid %s) exited before it ran a task", workload.workload_id,
                        workload.pid)
        self._restart(workload, progressed)

    def _answer_died(self, workload: _Workload, task: TaskIns) -> None:
        log.warning("workload %r: WorkloadClient (pid %s) exited running task %s",
                    workload.workload_id, workload.pid, task.task_id)
        self._answer_error(
            task,
            ErrorKind.WORKLOAD_CLIENT_DIED,
            f"the process running workload {workload.workload_id!r} (pid {workload.pid}) exited before answering",
        )

    def _split_running(self, workload: _Workload) -> Optional[TaskIns]:
        """A WorkloadClient ended or is being killed: sort out the tasks it held; return the one it was running.

        By the task board: tasks it never started go back to the front of the
        workload's queue; tasks it finished stay unconfirmed (their results are
        on their way, in its spill file, or answered later as orphans).
        Without a board slot it held one task, which counts as running.
        """
        held = list(workload.running.values())
        workload.running.clear()
        state = self._board_state(workload)
        if state is None:
            return held[0][1] if held else None
        started, _, finished = state
        running = None
        unstarted = []
        for seq, task in held:
            if seq == started and seq > finished:
                running = task
            elif seq > started:
                unstarted.append(task)
        for task in reversed(unstarted):
            self.unconfirmed.pop(task.task_id, None)
            workload.queue.appendleft(task)
        return running

    def _restart(self, workload: _Workload, progressed: bool = True) -> None:
        """Drop ``workload``'s process; its queued tasks continue on a fresh one (or are answered when stopping).

        After a death that made no progress the fresh one starts after the
        back-off of ``RestartIntensity``; past its limit the node gives up on
        the workload for ``GIVE_UP_FOR`` seconds.
        """
        if self.workloads.get(workload.workload_id) is workload:
            del self.workloads[workload.workload_id]
        queued = workload.take_queue()
        delay = self._restart_delay(workload.workload_id, progressed)
        if not _tasks(queued):
            self._unpark()
        elif self.stopping is not None or self.exiting:
            for task in _tasks(queued):
                self._answer_error(task, ErrorKind.NODE_SHUTTING_DOWN, "the node is shutting down")
        elif delay is None:
            self._give_up(workload, queued)
        else:
            fresh = _Workload(workload.workload_id, self.apps.get(workload.workload_id, workload.app))
            self.workloads[workload.workload_id] = fresh
            fresh.extend_queue(queued)
            if delay > 0:
                fresh.held = next(self.restart_tokens)
                self.wakeupAfter(timedelta(seconds=delay), _RestartDue(fresh.workload_id, fresh.held))
            else:
                self._place(fresh)
                self._feed(fresh)
        if self.stopping is not None:
            self._maybe_finish_stop()

    def _restart_delay(self, workload_id: WorkloadId, progressed: bool) -> Optional[float]:
        """Seconds before a fresh WorkloadClient of ``workload_id`` starts; ``None``: give up."""
        if progressed:
            self.restarts.pop(workload_id, None)
            return 0.0
        delay = self.restarts.setdefault(workload_id, RestartIntensity()).died(time.monotonic())
        if delay is None:
            del self.restarts[workload_id]
        return delay

    def _restart_due(self, due: _RestartDue) -> None:
        workload = self.workloads.get(due.workload_id)
        if workload is not None and workload.held == due.token:
            workload.held = 0
            self._place(workload)
            self._feed(workload)

    def _give_up(self, workload: _Workload, queued: List[Union[TaskIns, _OrderedStop]]) -> None:
        """Answer a workload whose WorkloadClients keep dying before they run a task; refuse it for a while."""
        reason = (
            f"the WorkloadClient of workload {workload.workload_id!r} died {RestartIntensity.max_restarts + 1} times "
            f"in a row before it ran a task (does app {workload.app.ref!r} kill its process while loading?); "
            f"this workload's tasks get this error for {GIVE_UP_FOR:.0f} s, then a fresh WorkloadClient is tried"
        )
        log.error("node %r: %s", self.config and self.config.node_id, reason)
        self.given_up[workload.workload_id] = (time.monotonic() + GIVE_UP_FOR, reason)
        for task in _tasks(queued):
            self._answer_error(task, ErrorKind.WORKLOAD_CLIENT_DIED, reason)

    def _deadline(self, workload_id: WorkloadId, incarnation: int) -> None:
        """Check the task ``workload``'s process runs against its deadline; kill the process if it is past.

        The deadline counts from the handler's real start, read on the task
        board; without a board slot (one task at a time), from when it was sent.
        """
        workload = self.workloads.get(workload_id)
        if workload is None or workload.incarnation != incarnation:
            return
        workload.watched = False
        if not workload.running:
            return  # nothing held: the next RunTasks starts the watch again
        state = self._board_state(workload)
        if state is None:
            task = next(iter(workload.running.values()))[1]
            started_at = workload.fed_at
        else:
            started, started_at, finished = state
            running = [task for seq, task in workload.running.values() if seq == started]
            if started <= finished or not running:  # between two tasks: look again soon
                self._watch(workload, DEADLINE_POLL)
                return
            task = running[0]
        deadline = self._deadline_of(task, workload)
        left = DEADLINE_POLL if deadline is None else started_at + deadline - time.time()
        if left > 0:
            self._watch(workload, left)
            return
        if self._gone_unnoticed(workload):  # it died on its own, and Thespian has not said so (yet)
            return
        self._split_running(workload)  # ``task`` is the one it runs; those after it go to a fresh process
        self.counters["deaths"] += 1
        self.counters["deadline_kills"] += 1
        self._answer_error(
            task,
            ErrorKind.DEADLINE_EXCEEDED,
            f"the handler ran past its deadline of {deadline} s; its process (pid {workload.pid}) was killed",
        )
        log.warning("workload %r: task %s exceeded its %s s deadline; killing pid %s",
                    workload.workload_id, task.task_id, deadline, workload.pid)
        self._kill(workload)
        self._ended(workload)
        self.retiring.append(workload)  # its ChildActorExited must not answer anything twice
        self._restart(workload)

    def _watch(self, workload: _Workload, wait: float) -> None:
        workload.watched = True
        self.wakeupAfter(timedelta(seconds=max(0.0, wait)), ("deadline", workload.workload_id, workload.incarnation))

    def _deadline_of(self, task: TaskIns, workload: _Workload) -> Optional[float]:
        return task.deadline_s or workload.app.deadline_s or (self.config.task_deadline_s if self.config else None)

    def _kill(self, workload: _Workload) -> None:
        """SIGKILL a WorkloadClient: a handler that is stuck never reads ``ActorExitRequest``."""
        if workload.address is not None and not workload.kill_on_start:
            self.send(workload.address, ActorExitRequest())
        if workload.pid is None:
            workload.kill_on_start = True  # done when it reports its pid
        else:
            try:
                os.kill(workload.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _retire(self, workload: _Workload) -> None:
        """Ask an idle or busy WorkloadClient to exit after its running task; forget the workload.

        Tasks it holds but has not started when it exits get ``workload.stop_reason``.
        """
        self.counters["stopped"] += 1
        self.restarts.pop(workload.workload_id, None)
        if self.workloads.get(workload.workload_id) is workload:
            del self.workloads[workload.workload_id]
        if workload.address is not None:
            self.send(workload.address, ActorExitRequest())
            self.retiring.append(workload)

    # Stopping workloads.

    def receive_StopWorkload(self, message: StopWorkload, sender: ActorAddress) -> None:
        was_running = self._stop_workload(message.workload_id, ErrorKind.WORKLOAD_STOPPED, "the workload was stopped")
        self.send(sender, WorkloadStopped(message.workload_id, was_running))

    def _stop_workload(self, workload_id: WorkloadId, kind: str, reason: str) -> bool:
        workload = self.workloads.get(workload_id)
        if workload is None:
            return False
        for task in _tasks(workload.take_queue()):
            self._answer_error(task, kind, reason)
        workload.stop_reason = (kind, reason)
        self._retire(workload)
        self._unpark()
        return True

    def _stop_idle_workloads(self) -> None:
        timeout = self.config.idle_timeout_s if self.config else None
        if timeout is None:
            return
        now = time.monotonic()
        for workload in list(self.workloads.values()):
            if workload.address is not None and workload.idle and now - workload.last_active > timeout:
                log.info("workload %r idle for %.1f s: stopped", workload.workload_id, now - workload.last_active)
                self._retire(workload)

    # Status and stop.

    def receive_GetNodeStatus(self, message: GetNodeStatus, sender: ActorAddress) -> None:
        """Answered when the Sender reports no push unacknowledged (its counts then include every result the
        server stored), or after ``STATUS_WAIT`` with the last known ones."""
        self.status_waiters.append((sender, message.request_id))
        if self.sender is None or self.stopped is not None:
            self._answer_status()
        elif len(self.status_waiters) == 1:
            self.send(self.sender, ReportProgress())
            self.wakeupAfter(timedelta(seconds=STATUS_WAIT), _STATUS)

    def _answer_status(self) -> None:
        """Answer every waiting status request."""
        waiters, self.status_waiters = self.status_waiters, []
        for who, request_id in waiters:
            self.send(who, self._status(request_id))

    def _status(self, request_id: int) -> NodeStatus:
        c = self.counters
        return NodeStatus(
                request_id=request_id,
                node_id=self.config.node_id if self.config else "",
                workloads_live=self._live(),
                workloads_created=c["created"],
                tasks_pulled=c["pulled"],
                tasks_in_flight=self._in_flight(),
                results_pushed=self.results_pushed,
                errors=self.results_with_errors,
                duplicates_dropped=c["duplicates"],
                bad_input=c["bad_input"],
                pulls=c["pulls"],
                pull_failures=c["pull_failures"],
                next_pull_at=self.next_pull_at,
                workloads_parked=sum(1 for w in self.workloads.values() if self._parked(w)),
                workloads_stopped=c["stopped"],
                deaths=c["deaths"],
                deadline_kills=c["deadline_kills"],
                workloads_warm=len(self.warm),
                unpushed=self.unpushed,
                pulling_paused=self.paused,
                handler_pids=tuple(w.pid for w in self.workloads.values() if w.pid is not None),
                pid=os.getpid(),
                session_id=os.getsid(0),
        )

    def receive_StopNode(self, message: StopNode, sender: ActorAddress) -> None:
        if self.config is None:  # never started: nothing to stop
            self.send(sender, NodeStopped("", 0, 0))
            return
        if self.stopped is not None:  # already stopped: say so again
            self.send(sender, self.stopped)
            return
        if self.stopping is not None:
            self.stop_waiters.append(sender)
            return
        timeout = message.timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            timeout = 5.0
        self.stopping = (sender, time.time() + timeout)
        self.next_pull_at = None
        for workload in [w for w in self.workloads.values() if self._without_process(w)]:
            for task in _tasks(workload.take_queue()):  # parked or held: never started, and will not start now
                self._answer_error(task, ErrorKind.NODE_SHUTTING_DOWN, "the node is shutting down")
            del self.workloads[workload.workload_id]
        self._maybe_finish_stop()

    def _maybe_finish_stop(self) -> None:
        if self.stopping is not None and all(w.idle for w in self.workloads.values()):
            self._finish_stop()

    def _finish_stop(self) -> None:
        """Answer what is left, stop every WorkloadClient (killing stuck ones), then flush the Sender."""
        assert self.stopping is not None
        if self.stop_finished:
            return
        self.stop_finished = True
        for workload in self.workloads.values():
            self._stop_process(workload, ask=True)
        for retired in self.retiring:  # already asked to exit
            self._stop_process(retired, ask=False)
        for warm in [*self.warm, *self.warming.values()]:
            self.send(warm.address, ActorExitRequest())
        self.warm.clear()
        self.warming.clear()
        self.workloads.clear()
        self.retiring.clear()
        if self.unconfirmed:  # results may still be on their way from processes that just stopped
            self.wakeupAfter(timedelta(seconds=ORPHAN_GRACE), _FLUSH_SENDER)
        else:
            self._flush_sender()

    def _stop_process(self, workload: _Workload, ask: bool) -> None:
        """Node stop: answer what ``workload`` has not finished, kill its process if it is running a task."""
        running = self._split_running(workload)
        for task in _tasks(workload.take_queue()):
            self._answer_error(task, ErrorKind.NODE_SHUTTING_DOWN, "the node stopped before the task started")
        if running is not None:
            self._answer_error(running, ErrorKind.NODE_SHUTTING_DOWN, "the node stopped before the handler finished")
            self._kill(workload)
        elif ask and workload.address is not None:
            self.send(workload.address, ActorExitRequest())

    def _flush_sender(self) -> None:
        if self.spill_dir is not None and os.path.isdir(self.spill_dir):
            self._recover(*(os.path.join(self.spill_dir, name) for name in os.listdir(self.spill_dir)))
        self._answer_orphans(None, ErrorKind.NODE_SHUTTING_DOWN,
                             "the node stopped before the result of this task reached the Sender")
        if self.sender is not None:
            self.send(self.sender, FlushSender(time.time() + SENDER_FLUSH_TIMEOUT))
        else:
            self.receive_SenderFlushed(SenderFlushed(0, 0), self.myAddress)

    def receive_SenderFlushed(self, message: SenderFlushed, sender: ActorAddress) -> None:
        if self.stopping is None or self.config is None or self.stopped is not None:
            return
        if message.unpushed:
            log.error("node %r stopped with %d result(s) the server never acknowledged", self.config.node_id,
                      message.unpushed)
        self.stopped = NodeStopped(self.config.node_id, message.pushed, message.unpushed)
        for who in [self.stopping[0], *self.stop_waiters]:
            self.send(who, self.stopped)
        self.stop_waiters = []

    def receive_ActorExitRequest(self, message: Any, sender: ActorAddress) -> None:
        # Thespian stops the children after this returns; they must not be replaced, and stuck ones must die.
        self.exiting = True
        for workload in list(self.workloads.values()) + self.retiring:
            if workload.running:
                self._kill(workload)
        remove_spill_dir(self.spill_dir)
