"""The fault sequences, decided from real parts without processes."""

from __future__ import annotations

from flower_actors import ErrorKind
from flower_actors.node.pool import ProcessPool
from flower_actors.node.recovery import Recovery
from flower_actors.node.routing import WorkloadTable
from flower_actors.node.shutdown import Shutdown
from flower_actors.node.supervision import Supervision
from flower_actors.node.task_board import TaskBoard
from flower_actors.node.workload import (
    Answer,
    CheckDeadline,
    Flush,
    Kill,
    Later,
    Place,
    RestartDue,
    Spawn,
    Unpark,
    Workload,
)
from tests.node.parts import config, task


class Node:
    """The parts a LeadClient would hold, with one workload whose process runs."""

    def __init__(self, **options: object) -> None:
        cfg = config(**options)
        self.board = TaskBoard(8)
        self.table, self.pool = WorkloadTable(cfg), ProcessPool(self.board, 0, None)
        self.recovery, self.shutdown = Recovery(None), Shutdown()
        self.alive = {4242}
        self.supervision = Supervision(
            self.table, self.pool, self.recovery, self.shutdown, cfg.task_deadline_s, lambda pid: pid in self.alive
        )

    def running(self, *contents: object) -> Workload:
        tasks = [task("w", c) for c in contents]
        workload = None
        for t in tasks:
            workload = self.table.route(t, 0.0)[0]  # type: ignore[index]
        assert workload is not None
        self.pool.assign(workload)
        self.pool.forked_for(workload)
        assert workload.process is not None
        self.pool.reported(workload.process.incarnation, 4242, "address")
        sent = self.table.next_tasks(workload, 64)
        self.recovery.sent(workload, sent, None)
        return workload


def test_a_crash_in_a_handler_answers_it_and_the_rest_go_to_a_fresh_record() -> None:
    node = Node()
    workload = node.running(1, 2, 3)
    assert workload.process is not None
    node.board.started(workload.process.slot, 2)  # finished 1, in 2
    decisions = node.supervision.process_ended(workload.incarnation, now=0.0)
    answers = [d for d in decisions if isinstance(d, Answer)]
    assert [a.kind for a in answers] == [ErrorKind.WORKLOAD_CLIENT_DIED]
    places = [d for d in decisions if isinstance(d, Place)]
    assert len(places) == 1 and places[0].workload.queued == 1 and node.table.get("w") is places[0].workload
    assert any(isinstance(d, Spawn) for d in decisions) is False, "it had reported: no spawning slot to free"
    assert node.pool.deaths == 1


def test_a_death_before_any_task_restarts_later() -> None:
    node = Node()
    workload = node.running(1)
    decisions = node.supervision.process_ended(workload.incarnation, now=0.0)
    later = [d for d in decisions if isinstance(d, Later)]
    assert len(later) == 1 and isinstance(later[0].payload, RestartDue) and later[0].delay == 0.1
    assert node.supervision.restart_due(later[0].payload)[0].workload is node.table.get("w")  # type: ignore[union-attr]


def test_a_handler_past_its_deadline_is_answered_killed_and_replaced() -> None:
    node = Node(task_deadline_s=1.0)
    workload = node.running(1, 2)
    assert workload.process is not None
    node.board.started(workload.process.slot, 1)
    check = CheckDeadline("w", workload.incarnation)
    slot_started_at = node.board.read(workload.process.slot)[1]  # type: ignore[index]
    assert isinstance(node.supervision.check_deadline(check, slot_started_at + 0.5, 0.0)[0], Later)
    decisions = node.supervision.check_deadline(check, slot_started_at + 1.5, 0.0)
    assert [type(d) for d in decisions][:2] == [Answer, Kill]
    assert decisions[0].kind == ErrorKind.DEADLINE_EXCEEDED  # type: ignore[union-attr]
    assert any(isinstance(d, Place) and d.workload.queued == 1 for d in decisions)
    assert node.pool.deadline_kills == 1 and node.pool.deaths == 1
    assert node.supervision.process_ended(check.incarnation, now=1.0) == [], "its exit notice answers nothing twice"


def test_a_stop_drains_once_and_ends_with_the_senders_flush() -> None:
    node = Node()
    workload = node.running(1, 2)
    assert workload.process is not None
    node.board.started(workload.process.slot, 2)  # 1 finished (its result may be on its way), 2 runs
    node.shutdown.request("me", 5.0, now=0.0)
    assert node.supervision.stop_requested() == [], "a task runs: wait"
    decisions = node.supervision.drain()
    assert [type(d) for d in decisions][:2] == [Answer, Kill]
    assert isinstance(decisions[-1], Later), "results may still be on their way"
    assert node.supervision.drain() == []
    assert isinstance(node.supervision.flush()[-1], Flush)


def test_nothing_restarts_once_the_actors_are_exiting() -> None:
    node = Node()
    workload = node.running(1, 2)
    assert [type(d) for d in node.supervision.exit_now()] == [Kill]
    decisions = node.supervision.process_ended(workload.incarnation, now=0.0)
    assert not any(isinstance(d, Place) for d in decisions)
    assert any(isinstance(d, Unpark) for d in decisions)


def test_a_lost_spawner_kills_and_ends_every_process_it_started() -> None:
    node = Node()
    workload = node.running(1, 2)
    assert workload.process is not None
    old = workload.process
    node.board.started(old.slot, 1)
    decisions = node.supervision.spawner_lost(now=0.0)
    assert [d.process for d in decisions if isinstance(d, Kill)] == [old], "no exit notice will come: kill it"
    assert [d.kind for d in decisions if isinstance(d, Answer)] == [ErrorKind.WORKLOAD_CLIENT_DIED]
    assert any(isinstance(d, Place) and d.workload.queued == 1 for d in decisions), "the rest restart"
    assert node.supervision.spawner_lost(now=0.0) == [], "nothing is ended twice"
