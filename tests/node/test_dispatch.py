"""Dispatch's resend of tasks an idle process never started, decided from real parts without processes."""

from __future__ import annotations

from flower_actors.node.dispatch import IDLE_CONFIRM_S, STALL_S, Dispatch
from flower_actors.node.pool import ProcessPool
from flower_actors.node.routing import WINDOW
from flower_actors.node.wire import ReportTasks, RunTasks, SpawnTurnDone
from flower_actors.node.workload import Decision, Exit, Phase, Process, Send, Spawn, Start, Workload

from .parts import config, live, task
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


# Reports on request: a process says TasksDone when the LeadClient waits on it; otherwise the board tells.


def _fed(node: Node, tasks: int, queued_more: int = 0) -> tuple[Dispatch, Workload, list[Decision]]:
    """A live process with a board slot, fed ``tasks`` tasks by ``Dispatch.feed``; ``queued_more`` wait behind."""
    parts = dispatch(node)
    routed = [node.table.route(task("w", n), 0.0) for n in range(tasks + queued_more)]
    workload = routed[0][0]  # type: ignore[index]
    live(workload, slot=node.board.allocate())
    return parts, workload, parts.feed(workload)


def test_a_process_is_not_asked_to_report_when_nothing_waits_for_it() -> None:
    _, workload, decisions = _fed(Node(), 5)
    (send,) = decisions
    assert isinstance(send, Send) and isinstance(send.message, RunTasks)
    assert len(send.message.tasks) == 5 and send.message.report is False
    assert not workload.report_asked
    _, workload, decisions = _fed(Node(), WINDOW, queued_more=3)
    (send,) = decisions
    assert isinstance(send, Send) and isinstance(send.message, RunTasks)
    assert send.message.report is True, "tasks wait beyond its window: it must say when it has room"
    assert workload.report_asked


def test_what_finished_is_read_on_the_board_and_frees_room() -> None:
    node = Node()
    parts, workload, _ = _fed(node, WINDOW)
    assert workload.process is not None and len(workload.running) == WINDOW
    for n in range(4):  # four more arrive while its window is full
        node.table.route(task("w", f"late {n}"), 0.0)
    (asked,) = parts.feed(workload)
    assert isinstance(asked, Send) and isinstance(asked.message, ReportTasks)
    assert parts.feed(workload) == [], "asked once, until it reports"
    node.board.started(workload.process.slot, 10)
    node.board.finished(workload.process.slot, 10)  # ten done, not reported
    (send,) = parts.feed(workload)
    assert isinstance(send, Send) and isinstance(send.message, RunTasks)
    assert [t.content for t in send.message.tasks] == [f"late {n}" for n in range(4)]
    assert len(workload.running) == WINDOW - 10 + 4


def test_a_report_clears_the_request_and_feeds_what_waits() -> None:
    from flower_actors.node.wire import TasksDone

    node = Node()
    parts, workload, _ = _fed(node, WINDOW, queued_more=2)
    assert workload.process is not None and workload.report_asked
    first = tuple(workload.running)[:5]
    decisions = parts.done(TasksDone("w", workload.incarnation, first))
    sends = [d for d in decisions if isinstance(d, Send)]
    assert len(sends) == 1 and isinstance(sends[0].message, RunTasks) and len(sends[0].message.tasks) == 2
    assert sends[0].message.report is False and not workload.report_asked, "nothing waits behind these"


def test_a_process_without_a_board_slot_always_reports() -> None:
    node = Node()
    parts = dispatch(node)
    workload = node.table.route(task("w", 1), 0.0)[0]  # type: ignore[index]
    live(workload, slot=-1)
    (send,) = parts.feed(workload)
    assert isinstance(send, Send) and isinstance(send.message, RunTasks) and send.message.report is True


def test_idle_workloads_are_found_by_the_board_without_a_report() -> None:
    node = Node()
    parts, workload, _ = _fed(node, 3)
    assert workload.process is not None
    node.board.started(workload.process.slot, 3)
    node.board.finished(workload.process.slot, 3)
    assert not workload.idle and node.table.in_flight() == 3  # as far as the table knew
    parts.settle_all()
    assert workload.idle and node.table.in_flight() == 0


def test_when_the_node_waits_on_every_process_those_holding_tasks_are_asked_once() -> None:
    node = Node()
    parts, workload, _ = _fed(node, 3)
    assert workload.process is not None and not workload.report_asked
    (ask,) = parts.want_reports(True)  # pulling paused for room, or the node stopping
    assert isinstance(ask, Send) and isinstance(ask.message, ReportTasks) and workload.report_asked
    assert parts.want_reports(True) == []
    node.table.route(task("w", "more"), 0.0)
    (send,) = parts.feed(workload)
    assert isinstance(send, Send) and isinstance(send.message, RunTasks) and send.message.report is True
    assert parts.want_reports(False) == [] and not parts.reports_wanted


# A turn's answer carries the new processes' addresses (their listening sockets were opened before the fork).


def test_a_turn_s_answer_makes_its_processes_reachable_and_feeds_them_directly() -> None:
    node = Node()
    parts = dispatch(node)
    workload = node.table.route(task("w", 0), 0.0)[0]  # type: ignore[index]
    (start,) = parts.forked(workload)
    assert isinstance(start, Start) and [t.content for t in start.message.tasks] == [0]
    process = workload.process
    assert process is not None and process.pid is None and workload.phase is Phase.STARTING
    node.table.route(task("w", 1), 0.0)  # arrives while the Spawner forks
    kill, decisions = parts.turn_done(SpawnTurnDone(((process.incarnation, 4321),), ((process.incarnation, "addr"),)))
    assert kill == []
    assert (process.pid, process.address, workload.phase) == (4321, "addr", Phase.LIVE)
    sends = [d for d in decisions if isinstance(d, Send)]
    assert [(s.address, [t.content for t in s.message.tasks]) for s in sends] == [("addr", [1])], "fed directly"
    assert isinstance(decisions[-1], Spawn), "the next turn may go"


def _forking(node: Node) -> tuple[Dispatch, Workload, Process]:
    """A new workload whose process the Spawner is forking (its start went with the turn)."""
    parts = dispatch(node)
    workload = node.table.route(task("w", 0), 0.0)[0]  # type: ignore[index]
    parts.forked(workload)
    assert workload.process is not None
    return parts, workload, workload.process


def test_a_turn_s_process_doomed_meanwhile_is_killed_not_fed() -> None:
    node = Node()
    parts, _, process = _forking(node)
    assert not node.pool.doom(process), "its pid is not known yet"
    kill, decisions = parts.turn_done(SpawnTurnDone(((process.incarnation, 4321),), ((process.incarnation, "addr"),)))
    assert kill == [4321]
    assert not any(isinstance(d, Send) for d in decisions)


def test_a_turn_s_process_without_an_address_is_reached_through_the_spawner() -> None:
    parts, workload, process = _forking(Node())
    kill, _ = parts.turn_done(SpawnTurnDone(((process.incarnation, 4321),), ((process.incarnation, None),)))
    assert kill == [] and process.pid == 4321 and process.address is None and workload.phase is Phase.LIVE


def test_warm_processes_that_imported_the_app_themselves_are_asked_to_exit_and_their_end_owes_nothing() -> None:
    node = Node()
    node.pool = ProcessPool(node.board, 2, "app")
    node.supervision.pool = node.pool
    d = Dispatch(config(), node.table, node.pool, node.recovery, "lead")
    first, second = node.pool.forked_warm(), node.pool.forked_warm()  # both import "app" themselves
    assert d.reported(first.incarnation, 100, "a") == [Spawn()]
    node.pool.imported("app")  # the Spawner has it now
    assert d.replace_stale_warm() == [Exit(first)]
    assert d.reported(second.incarnation, 101, "b") == [Exit(second), Spawn()], "stale on arrival"
    assert node.supervision.process_ended(first.incarnation, 0.0) == [] and node.pool.deaths == 0
    assert node.pool.preimport == "app", "importing ahead stays on"
