"""Dispatch's resend of tasks an idle process never started, decided from real parts without processes."""

from __future__ import annotations

from flower_actors.node.dispatch import IDLE_CONFIRM_S, STALL_S, Dispatch
from flower_actors.node.wire import RunTasks
from flower_actors.node.workload import Phase, Send

from .parts import config
from .test_supervision import Node


def dispatch(node: Node) -> Dispatch:
    return Dispatch(config(), node.table, node.pool, node.recovery, "lead")


def test_tasks_an_idle_process_never_started_are_sent_again_once_per_stall() -> None:
    node = Node()
    workload = node.running(1, 2, 3)
    assert workload.process is not None
    workload.phase = Phase.LIVE  # its start went out with task 1
    node.board.started(workload.process.slot, 1)
    node.board.finished(workload.process.slot, 1)  # idle after task 1; tasks 2 and 3 never arrived
    workload.fed_at = 100.0
    parts = dispatch(node)
    assert parts.stalled(100.0 + STALL_S / 2) == []  # fed only just now
    assert parts.stalled(100.0 + STALL_S * 2) == [], "idle once may be between two tasks"
    decisions = parts.stalled(100.0 + STALL_S * 2 + IDLE_CONFIRM_S)
    assert len(decisions) == 1 and isinstance(decisions[0], Send) and isinstance(decisions[0].message, RunTasks)
    assert [t.content for t in decisions[0].message.tasks] == [2, 3]
    assert parts.stalled(100.0 + STALL_S * 2.5) == []  # the resend counts as a feed


def test_a_process_between_two_tasks_is_not_taken_for_stalled() -> None:
    node = Node()
    workload = node.running(1, 2, 3)
    assert workload.process is not None
    workload.phase = Phase.LIVE
    slot = workload.process.slot
    node.board.started(slot, 1)
    node.board.finished(slot, 1)  # task 1 (which ran 2 s) just ended; task 2 starts in a moment
    workload.fed_at = 100.0
    parts = dispatch(node)
    assert parts.stalled(102.0) == []
    node.board.started(slot, 2)
    node.board.finished(slot, 2)  # it did: 2 ran, and now 3 is next
    assert parts.stalled(102.0 + IDLE_CONFIRM_S) == [], "progress since: not stalled"


def test_a_process_inside_a_handler_is_never_sent_its_tasks_again() -> None:
    node = Node()
    workload = node.running(1, 2)
    assert workload.process is not None
    workload.phase = Phase.LIVE
    node.board.started(workload.process.slot, 1)  # in task 1, for as long as it takes
    workload.fed_at = 0.0
    assert dispatch(node).stalled(1000.0) == []
