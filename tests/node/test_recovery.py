"""What is owed when processes end or hang, without processes."""

from __future__ import annotations

from pathlib import Path

from flower_actors import AppSpec, ErrorKind, TaskRes
from flower_actors.node.recovery import DEADLINE_POLL, Expired, Recovery
from flower_actors.node.spill import SpillWriter
from flower_actors.node.workload import Exit, Kill, Phase, Workload
from tests.node.parts import config, live, task


def held(*tasks: object, deadline: float | None = None) -> Workload:
    workload = live(Workload("w", AppSpec("tests.apps:Adder", deadline_s=deadline)))
    for seq, t in enumerate(tasks, start=1):
        workload.running[t.task_id] = (seq, t)  # type: ignore[attr-defined]
    return workload


def test_a_death_answers_the_running_task_and_requeues_the_unstarted_ones() -> None:
    recovery = Recovery(None)
    done, running, later = task(), task(), task()
    workload = held(done, running, later)
    recovery.sent(workload, (done, running, later), None)
    answers, progressed = recovery.died(workload, (2, 0.0, 1))
    assert [a.task for a in answers] == [running] and answers[0].kind == ErrorKind.WORKLOAD_CLIENT_DIED
    assert progressed and list(workload.queue) == [later]
    assert set(recovery.unconfirmed) == {done.task_id}, "the finished one's result may still arrive"
    assert [a.task for a in recovery.orphans(workload.incarnation, "k", "m")] == [done]
    assert not recovery.owes(workload.incarnation)


def test_a_death_before_any_task_made_no_progress() -> None:
    workload = held(task())
    answers, progressed = Recovery(None).died(workload, (0, 0.0, 0))
    assert not answers and not progressed and workload.queued == 1


def test_deadlines_count_from_the_real_start_and_the_most_specific_wins() -> None:
    t = task(deadline_s=2.0)
    workload = held(t, deadline=5.0)
    assert Recovery.first_check(workload, (t,), node_deadline=9.0) == DEADLINE_POLL
    assert Recovery.check(workload, (1, 100.0, 0), now=101.0, node_deadline=9.0) == 1.0
    verdict = Recovery.check(workload, (1, 100.0, 0), now=102.5, node_deadline=9.0)
    assert isinstance(verdict, Expired) and verdict.task is t and verdict.deadline == 2.0
    assert Recovery.check(workload, (1, 100.0, 1), now=200.0, node_deadline=9.0) == DEADLINE_POLL, "between tasks"
    workload.running.clear()
    assert Recovery.check(workload, (1, 100.0, 1), now=200.0, node_deadline=9.0) is None


def test_spilled_results_are_read_back_once(tmp_path: Path) -> None:
    recovery = Recovery(str(tmp_path))
    t = task()
    workload = held(t)
    recovery.sent(workload, (t,), None)
    path = recovery.spill_path(workload.incarnation)
    assert path is not None
    SpillWriter(path).write([TaskRes.answer(t, payload=b"x")])
    assert [r.ins_id for r in recovery.read_back(workload.incarnation)] == [t.task_id]
    assert not recovery.owes(workload.incarnation) and recovery.read_back(None) == []


def test_stopping_answers_what_is_held_and_kills_only_busy_processes() -> None:
    recovery = Recovery(None)
    busy, idle = held(task(), task()), live(Workload("i", config().default_app), incarnation=8)  # type: ignore[arg-type]
    decisions = recovery.stop_all([busy, idle], lambda w: (1, 0.0, 0) if w is busy else None)
    kinds = [type(d).__name__ for d in decisions]
    assert kinds == ["Answer", "Answer", "Kill", "Exit"]
    assert isinstance(decisions[2], Kill) and isinstance(decisions[3], Exit) and busy.phase is Phase.LIVE


def test_a_load_that_hangs_counts_against_the_first_tasks_deadline() -> None:
    first, second = task(), task()
    workload = held(first, second)
    loading = (0, 100.0, -1)  # what TaskBoard.loading writes
    assert Recovery.check(workload, loading, now=100.5, node_deadline=1.0) == 0.5
    verdict = Recovery.check(workload, loading, now=101.5, node_deadline=1.0)
    assert isinstance(verdict, Expired) and verdict.task is first
    recovery = Recovery(None)
    recovery.sent(workload, (first, second), None)
    answers = recovery.expired(workload, verdict, loading)
    assert [a.task for a in answers] == [first] and list(workload.queue) == [second], "answered once, not requeued"
    _, progressed = Recovery(None).died(held(task()), loading)
    assert not progressed, "a death while loading made no progress"
