"""PullSchedule and Intake, without processes."""

from __future__ import annotations

import pytest

from flower_actors import ErrorKind, TaskIns
from flower_actors.node.intake import Intake, PullSchedule
from flower_actors.node.workload import Answer
from tests.node.parts import config, task


def test_periodic_pulls_stay_on_the_grid_without_drift() -> None:
    schedule = PullSchedule(config(poll_interval=1.0), anchor=100.0)
    assert schedule.next_tick(100.2) == pytest.approx(0.8)
    assert schedule.next_pull_at == 101.0
    assert schedule.next_tick(101.95) == pytest.approx(0.05)  # a late tick does not shift the grid
    assert schedule.next_pull_at == 102.0


def test_one_pull_at_a_time_and_back_off_after_failures() -> None:
    schedule = PullSchedule(config(long_poll=True, retry_backoff_max=0.4), anchor=0.0)
    first = schedule.pull(room=10, now=0.0)
    assert first is not None and first.max_tasks == 10 and first.wait_s == 5.0
    assert schedule.pull(room=10, now=0.0) is None, "one outstanding"
    delay = schedule.failed(first.request_id, now=1.0)
    assert delay is not None and 0.05 <= delay <= 0.1
    assert schedule.pull(room=10, now=1.0) is None, "backing off"
    second = schedule.pull(room=10, now=1.0 + delay)
    assert second is not None and second.request_id == first.request_id + 1
    assert schedule.failed(first.request_id, now=2.0) is None, "a late failure of an old pull changes nothing"
    schedule.answered(second.request_id)
    assert schedule.backoff.failures == 0 and schedule.pull(room=1, now=2.0) is not None


def test_a_pull_is_lost_after_its_wait_and_timeout() -> None:
    schedule = PullSchedule(config(long_poll=True, long_poll_wait=1.0, request_timeout=2.0), anchor=0.0)
    schedule.pull(room=1, now=0.0)
    assert not schedule.lost(2.9) and schedule.lost(3.1)


def test_saturation_pauses_pulling() -> None:
    schedule = PullSchedule(config(max_in_flight=10, max_unpushed=5, max_pull_batch=4), anchor=0.0)
    assert schedule.room(in_flight=0, unpushed=0) == 4
    assert schedule.room(in_flight=8, unpushed=0) == 2
    assert schedule.room(in_flight=0, unpushed=5) == 0
    assert schedule.pull(room=0, now=0.0) is None and schedule.paused


def test_intake_accepts_stamps_dedupes_and_refuses() -> None:
    intake = Intake(config(max_content_bytes=100))
    good = task()
    accepted = intake.accept(good, now=5.0, stopping=False)
    assert isinstance(accepted, TaskIns) and accepted.pulled_at == 5.0
    assert intake.accept(good, now=6.0, stopping=False) is None and intake.duplicates == 1
    wrong_node = intake.accept(task(node_id=9), now=0.0, stopping=False)
    assert isinstance(wrong_node, Answer) and wrong_node.kind == ErrorKind.BAD_TASK
    big = intake.accept(task(content="x" * 500), now=0.0, stopping=False)
    assert isinstance(big, Answer) and "exceeds this node's limit of 100" in big.message
    assert intake.accept({"not": "a task"}, now=0.0, stopping=False) == "expected a TaskIns, got dict"
    assert intake.bad_input == 1
    late = intake.accept(task(), now=0.0, stopping=True)
    assert isinstance(late, Answer) and late.kind == ErrorKind.NODE_SHUTTING_DOWN
    assert intake.pulled == 2
