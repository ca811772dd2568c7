"""WorkloadClient processes: the warm pool, spawning turns, pids, and what a process's exit means."""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..runtime.retry import RestartIntensity
from .task_board import TaskBoard
from .workload import Exit, Phase, Process, Workload

__all__ = ["MAX_CONCURRENT_SPAWNS", "SPAWN_TURN", "TURN_TIMEOUT", "ProcessPool", "Reported", "SpawnTurn"]

log = logging.getLogger(__name__)

MAX_CONCURRENT_SPAWNS = 64
"""WorkloadClients starting at once (forked or to be, pid not reported); more wait, so that a burst of new
workloads does not start more processes at once than the machine can run."""
SPAWN_TURN = 16
"""WorkloadClients asked of the Spawner per turn (one message). One turn is with the Spawner at a time
(``turn_sent``/``turn_done``): the LeadClient routes while the Spawner forks, and the next turn takes every
workload that queued meanwhile. Asked for turn after turn, the LeadClient held up to 19 of them queued for
the Spawner in a 1,000-workload burst, mostly of one workload each, and its transport went through all of
them on every pass (a third of its CPU)."""
TURN_TIMEOUT = 10.0
"""Seconds after which a turn the Spawner has not answered no longer holds the next one back."""
WARM_PAUSE_AFTER_GIVING_UP = 30.0
"""After warm processes died too often (``RestartIntensity``), how long the warm pool is not refilled."""


@dataclass
class SpawnTurn:
    """What to fork in one turn: processes for these workloads, then ``warm`` for the pool."""

    workloads: list[Workload] = field(default_factory=list)
    warm: int = 0
    again: bool = False
    """More may be due: ask for another turn."""


@dataclass(frozen=True)
class Reported:
    """A process reported its pid: it joined the warm pool, or it is ``workload``'s; ``kill`` it if doomed."""

    warm: Process | None = None
    workload: Workload | None = None
    kill: bool = False


class ProcessPool:
    """The node's WorkloadClient processes that are not a live workload's: warm, starting, retiring."""

    def __init__(self, board: TaskBoard | None, warm_pool: int, preimport: str | None) -> None:
        self.board = board
        self.size = warm_pool
        self.preimport = preimport
        """Module the warm processes import ahead (``None``: none, or importing it killed one)."""
        self.shared: set[str] = set()  # app modules a WorkloadClient imported cleanly: the Spawner imports them too
        self.unsent: list[str] = []  # of those, the ones the Spawner has not been told of
        self.sharing = True  # False once a Spawner died: it may have died importing one
        self.incarnations = itertools.count(1)
        self.warm: deque[Process] = deque()  # reported their pid, wait for a workload
        self.warming: dict[int, Process] = {}  # incarnation -> started for the pool, pid not reported
        self.private_imports: set[int] = set()  # warm processes forked before the Spawner had ``preimport``
        self.replaced: dict[int, Process] = {}  # incarnation -> warm process asked to exit (``stale_warm``)
        self.spawning: dict[int, Workload] = {}  # incarnation -> workload whose process has not reported
        self.spawn_queue: deque[Workload] = deque()
        self.doomed: set[int] = set()  # incarnations to SIGKILL as soon as they report their pid
        self.retiring: list[Workload] = []  # asked to exit; answered if they die holding a task
        self.warm_restarts = RestartIntensity()
        self.warm_paused_until = 0.0  # monotonic
        self.turn_since: float | None = None  # monotonic: when the turn with the Spawner was sent
        self.created = 0  # processes given to workloads
        self.stopped = 0  # workloads' processes stopped on purpose (idle, cap, StopWorkload)
        self.deaths = 0  # processes that ended without being asked to (deadline kills included)
        self.deadline_kills = 0

    # Modules the Spawner imports for its children (``NodeConfig.share_imports``).

    def imported(self, module: str) -> None:
        """A WorkloadClient imported ``module`` itself, cleanly: the Spawner may import it too."""
        if self.sharing and module and module not in self.shared:
            self.shared.add(module)
            self.unsent.append(module)

    def imports_to_share(self) -> tuple[str, ...]:
        """The modules to tell the Spawner of now (each once)."""
        unsent, self.unsent = tuple(self.unsent), []
        return unsent

    def spawner_replaced(self) -> None:
        """A new Spawner has none of the modules; the old one may have died importing one: share none again.

        Nor will the old one answer its turn."""
        self.sharing = False
        self.unsent.clear()
        self.turn_since = None

    def turn_sent(self, now: float) -> None:
        """A turn went to the Spawner (``now`` monotonic): the next waits for its answer."""
        self.turn_since = now

    def turn_done(self, pids: tuple[tuple[int, int], ...] = ()) -> list[int]:
        """The Spawner forked the turn's processes (``pids``: (incarnation, pid) each): the next turn may go.

        Returns the pids to SIGKILL now: processes doomed before their pid was known (they need not report).
        """
        self.turn_since = None
        kill: list[int] = []
        for incarnation, pid in pids:
            if incarnation in self.doomed:
                self.doomed.discard(incarnation)
                kill.append(pid)
            workload = self.spawning.get(incarnation)
            process = workload.process if workload is not None else self.warming.get(incarnation)
            if process is not None and process.pid is None:
                process.pid = pid  # its address comes with its own report
        return kill

    def new_process(self) -> Process:
        """Record a process about to be started (by the Spawner); its address comes with its report."""
        slot = self.board.allocate() if self.board is not None else -1
        return Process(next(self.incarnations), slot)

    # Giving workloads a process.

    def assign(self, workload: Workload) -> None:
        """Give ``workload`` a warm process now, or queue it for a spawning turn."""
        if self.warm:
            workload.process = self.warm.popleft()
            workload.phase = Phase.ASSIGNED
            workload.sent = 0
            self.created += 1
        elif workload.phase is not Phase.QUEUED:
            workload.phase = Phase.QUEUED
            self.spawn_queue.append(workload)

    def starting(self) -> int:
        return len(self.spawning) + len(self.warming)

    def turn(self, now: float, stopping: bool) -> SpawnTurn:
        """Decide one spawning turn: first waiting workloads, then the warm pool (``now`` monotonic).

        Nothing while a turn is with the Spawner (unless it went unanswered for ``TURN_TIMEOUT``)."""
        plan = SpawnTurn()
        if self.turn_since is not None:
            if now - self.turn_since < TURN_TIMEOUT:
                return plan
            log.warning("the Spawner did not answer a turn in %.0f s: the next goes anyway", TURN_TIMEOUT)
            self.turn_since = None
        budget = SPAWN_TURN
        while budget and self.spawn_queue and self.starting() + len(plan.workloads) < MAX_CONCURRENT_SPAWNS:
            workload = self.spawn_queue.popleft()
            if workload.phase is Phase.QUEUED:  # not stopped or forgotten meanwhile
                plan.workloads.append(workload)
                budget -= 1
        while (
            budget
            and not self.spawn_queue
            and not stopping
            and now >= self.warm_paused_until
            and len(self.warm) + len(self.warming) + plan.warm < self.size
            and self.starting() + len(plan.workloads) + plan.warm < MAX_CONCURRENT_SPAWNS
        ):
            plan.warm += 1
            budget -= 1
        plan.again = budget == 0
        return plan

    def forked_for(self, workload: Workload) -> None:
        """``workload`` gets a new process; its start goes with its first tasks."""
        workload.process = self.new_process()
        workload.phase = Phase.ASSIGNED
        workload.sent = 0
        self.spawning[workload.process.incarnation] = workload
        self.created += 1

    def forked_warm(self) -> Process:
        """A new process for the warm pool."""
        process = self.new_process()
        self.warming[process.incarnation] = process
        if self.preimport is not None and self.preimport not in self.shared:  # it imports the module itself
            self.private_imports.add(process.incarnation)
        return process

    def stale_warm(self) -> list[Process]:
        """Idle warm processes that imported ``preimport`` themselves, now that the Spawner has it too: they
        leave the pool (to be asked to exit) and are refilled by processes that share the Spawner's copy.

        The first warm pool is forked before any process has imported the app; each of its processes held
        a private copy of everything the import made (1.2 MB more than a refill for the benchmark's app).
        """
        if self.preimport is None or self.preimport not in self.shared:
            return []
        stale = [p for p in self.warm if p.incarnation in self.private_imports]
        for process in stale:
            self.warm.remove(process)
            self.private_imports.discard(process.incarnation)
            self.replaced[process.incarnation] = process
        return stale

    def needs_refill(self) -> bool:
        return len(self.warm) + len(self.warming) < self.size

    def full(self) -> bool:
        """Whether every process of the warm pool has reported and waits for a workload."""
        return len(self.warm) >= self.size

    def reported(self, incarnation: int, pid: int, address: Any) -> Reported | None:
        """A process reported its pid (from ``address``)."""
        warm = self.warming.pop(incarnation, None)
        if warm is not None:
            warm.pid, warm.address = pid, address
            self.warm.append(warm)
            return Reported(warm=warm)
        workload = self.spawning.pop(incarnation, None)
        if workload is None or workload.process is None:  # forgotten meanwhile (its Spawner died): doomed or not
            if incarnation in self.doomed:
                self.doomed.discard(incarnation)
                return Reported(kill=True)
            return None
        workload.process.pid, workload.process.address = pid, address
        if workload.phase is Phase.STARTING:
            workload.phase = Phase.LIVE
        kill = incarnation in self.doomed
        self.doomed.discard(incarnation)
        return Reported(workload=workload, kill=kill)

    # Processes that end.

    def stop(self, workload: Workload) -> None:
        """``workload``'s process is stopped on purpose (it is asked to exit)."""
        self.stopped += 1
        self.retire(workload)

    def retire(self, workload: Workload) -> None:
        """``workload``'s process was asked to exit (or killed); it is watched until it is gone."""
        workload.phase = Phase.RETIRING
        if workload.process is not None:
            self.retiring.append(workload)

    def doom(self, process: Process) -> bool:
        """Mark a process for SIGKILL; True if its pid is known (kill it now), else it dies when it reports."""
        if process.pid is None:
            self.doomed.add(process.incarnation)
            return False
        return True

    def warm_exited(self, incarnation: int) -> Process | None:
        """If ``incarnation`` is a warm process (reported or not), forget it and return it (``None`` for one
        that was replaced: asked to exit, it owes nothing)."""
        self.private_imports.discard(incarnation)
        replaced = self.replaced.pop(incarnation, None)
        if replaced is not None:
            self._release(replaced)
            return None
        for process in [*self.warm, *self.warming.values()]:
            if process.incarnation == incarnation:
                if process in self.warm:
                    self.warm.remove(process)
                self.warming.pop(process.incarnation, None)
                self._release(process)
                return process
        return None

    def retired_exited(self, incarnation: int) -> Workload | None:
        """If ``incarnation`` is a retiring workload's process, forget it and return the workload."""
        for workload in self.retiring:
            if workload.process is not None and workload.process.incarnation == incarnation:
                self.retiring.remove(workload)
                return workload
        return None

    def released(self, workload: Workload) -> bool:
        """``workload``'s process is gone: free its board slot; True if it never reported (a spawn slot frees)."""
        if workload.process is None:
            return False
        self._release(workload.process)
        return self.spawning.pop(workload.process.incarnation, None) is not None

    def warm_died(self, now: float) -> str | None:
        """A warm process died before it was used: stop importing ahead, refill only after a back-off.

        Returns the module no longer imported ahead, if this death turned that off.
        """
        self.deaths += 1
        stopped, self.preimport = self.preimport, None
        delay = self.warm_restarts.died(now)
        self.warm_paused_until = now + (WARM_PAUSE_AFTER_GIVING_UP if delay is None else delay)
        return stopped

    def gone_unnoticed(self, busy: list[Workload], alive: Callable[[int], bool]) -> list[int]:
        """Incarnations of processes that ended without a notice (Thespian misses some deaths when several end
        at once, and those of processes that end before their parent heard them connect): of these workloads,
        those holding tasks, and of the warm pool (pids of processes not reported yet come from the Spawner)."""
        processes = [w.process for w in [*busy, *self.retiring] if w.running and w.process is not None]
        starting = [*self.warm, *self.warming.values(), *self.replaced.values()]
        return [p.incarnation for p in [*processes, *starting] if p.pid is not None and not alive(p.pid)]

    def every_process(self, workloads: list[Workload]) -> list[Process]:
        """Every process this pool knows of: warm, starting, retiring, and these workloads'."""
        owned = [w.process for w in [*workloads, *self.retiring] if w.process is not None]
        return [*self.warm, *self.warming.values(), *self.replaced.values(), *owned]

    def board_state(self, workload: Workload) -> tuple[int, float, int] | None:
        """(started seq, started at, finished seq) of ``workload``'s process; ``None`` without a board slot."""
        slot = workload.process.slot if workload.process is not None else -1
        return self.board.read(slot) if self.board is not None else None

    def in_long_handler(self, workload: Workload, now: float, longer_than: float) -> bool:
        """Whether ``workload``'s process has been in one handler for over ``longer_than`` seconds (wall clock)."""
        state = self.board_state(workload)
        return state is not None and state[0] > state[2] and now - state[1] > longer_than

    def stop_all(self) -> list[Exit]:
        """The node stops: every warm process exits; nothing is watched any more."""
        exits = [Exit(p) for p in [*self.warm, *self.warming.values()]]
        for workload in self.spawn_queue:  # never forked now
            workload.phase = Phase.RETIRING
        self.spawn_queue.clear()
        self.warm.clear()
        self.warming.clear()
        self.retiring.clear()
        return exits

    def _release(self, process: Process) -> None:
        if self.board is not None and process.slot >= 0:
            self.board.release(process.slot)
            process.slot = -1
