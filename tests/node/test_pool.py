"""The process pool, without processes (processes are incarnations, addresses tokens, pids numbers)."""

from __future__ import annotations

from flower_actors.node.pool import MAX_CONCURRENT_SPAWNS, SPAWN_TURN, TURN_TIMEOUT, ProcessPool
from flower_actors.node.task_board import TaskBoard
from flower_actors.node.workload import Exit, Phase, Workload
from tests.node.parts import config


def workload(name: str = "w") -> Workload:
    return Workload(name, config().default_app)  # type: ignore[arg-type]


def test_a_warm_process_is_taken_at_once_else_the_workload_waits_for_a_turn() -> None:
    pool = ProcessPool(TaskBoard(8), warm_pool=1, preimport="tests.apps")
    plan = pool.turn(now=0.0, stopping=False)
    assert plan.warm == 1 and not plan.workloads
    warm = pool.forked_warm()
    assert pool.reported(warm.incarnation, 100, "warm-address") is not None and list(pool.warm) == [warm]
    first, second = workload("a"), workload("b")
    pool.assign(first)
    pool.assign(second)
    assert first.phase is Phase.ASSIGNED and first.process is warm and pool.created == 1
    assert second.phase is Phase.QUEUED
    plan = pool.turn(now=0.0, stopping=False)
    assert plan.workloads == [second] and plan.warm == 1 and not plan.again, "workloads first, then the pool"
    pool.forked_for(second)
    assert second.phase is Phase.ASSIGNED and second.process is not None and second.process.pid is None
    second.phase = Phase.STARTING
    reported = pool.reported(second.process.incarnation, 200, "b-address")
    assert reported is not None and reported.workload is second and second.phase is Phase.LIVE


def test_turns_are_bounded_and_skip_workloads_no_longer_waiting() -> None:
    pool = ProcessPool(None, warm_pool=0, preimport=None)
    waiting = [workload(str(i)) for i in range(SPAWN_TURN + 3)]
    for w in waiting:
        pool.assign(w)
    waiting[0].phase = Phase.RETIRING  # stopped meanwhile
    plan = pool.turn(now=0.0, stopping=False)
    assert plan.workloads == waiting[1 : 1 + SPAWN_TURN] and plan.again
    for w in plan.workloads:
        pool.forked_for(w)
    assert pool.starting() == SPAWN_TURN <= MAX_CONCURRENT_SPAWNS


def test_one_turn_is_with_the_spawner_at_a_time_and_the_next_takes_all_that_queued_meanwhile() -> None:
    pool = ProcessPool(None, warm_pool=0, preimport=None)
    first = workload("first")
    pool.assign(first)
    plan = pool.turn(now=0.0, stopping=False)
    assert plan.workloads == [first]
    pool.forked_for(first)
    pool.turn_sent(now=0.0)
    later = [workload(str(i)) for i in range(5)]
    for w in later:
        pool.assign(w)
    assert not pool.turn(now=1.0, stopping=False).workloads, "the Spawner has not answered the first turn"
    pool.turn_done()
    assert pool.turn(now=1.0, stopping=False).workloads == later, "one turn for everything that queued meanwhile"


def test_a_turn_the_spawner_never_answers_holds_the_next_back_only_so_long() -> None:
    pool = ProcessPool(None, warm_pool=0, preimport=None)
    pool.turn_sent(now=0.0)
    waiting = workload()
    pool.assign(waiting)
    assert not pool.turn(now=TURN_TIMEOUT - 1, stopping=False).workloads
    assert pool.turn(now=TURN_TIMEOUT + 1, stopping=False).workloads == [waiting]
    pool.turn_sent(now=20.0)
    pool.spawner_replaced()  # a dead Spawner answers nothing: its successor takes the next turn at once
    again = workload("again")
    pool.assign(again)
    assert pool.turn(now=20.5, stopping=False).workloads == [again]


def test_a_process_doomed_before_its_pid_was_known_is_killed_when_the_spawner_gives_it() -> None:
    pool = ProcessPool(None, warm_pool=0, preimport=None)
    w = workload()
    pool.assign(w)
    pool.forked_for(w)
    pool.turn_sent(now=0.0)
    assert w.process is not None and not pool.doom(w.process), "no pid yet: doomed"
    assert pool.turn_done(((w.process.incarnation, 4242),)) == [4242]
    assert w.process.pid == 4242 and w.process.incarnation not in pool.doomed
    again = workload("again")
    pool.assign(again)
    pool.forked_for(again)
    assert again.process is not None
    assert pool.turn_done(((again.process.incarnation, 4343),)) == [] and again.process.pid == 4343


def test_a_process_killed_before_it_reports_dies_when_it_does() -> None:
    pool = ProcessPool(None, warm_pool=0, preimport=None)
    w = workload()
    pool.assign(w)
    pool.forked_for(w)
    assert w.process is not None and not pool.doom(w.process)
    reported = pool.reported(w.process.incarnation, 300, "address")
    assert reported is not None and reported.kill
    again = workload("again")
    pool.assign(again)
    pool.forked_for(again)
    assert again.process is not None and not pool.doom(again.process)
    pool.released(again)  # ended without a report (its Spawner died)
    late = pool.reported(again.process.incarnation, 301, "address")
    assert late is not None and late.kill, "a doomed process that reports late still dies"


def test_warm_deaths_stop_importing_ahead_and_pause_the_refill() -> None:
    pool = ProcessPool(None, warm_pool=2, preimport="bad.module")
    assert pool.warm_died(now=0.0) == "bad.module" and pool.preimport is None
    assert pool.turn(now=0.05, stopping=False).warm == 0, "paused"
    assert pool.turn(now=0.2, stopping=False).warm == 2
    for now in (1.0, 2.0, 3.0):
        pool.warm_died(now)
    assert pool.warm_paused_until >= 3.0 + 30.0, "gave up for a while"
    assert pool.deaths == 4


def test_exits_are_told_apart_and_slots_released() -> None:
    board = TaskBoard(4)
    pool = ProcessPool(board, warm_pool=1, preimport=None)
    warm = pool.forked_warm()
    retired = workload("r")
    pool.assign(retired)
    pool.forked_for(retired)
    pool.retire(retired)
    assert retired.process is not None and retired.process.address is None, "its address comes with its report"
    assert pool.warm_exited(warm.incarnation) is warm and pool.warm_exited(warm.incarnation) is None
    assert pool.retired_exited(retired.incarnation) is retired
    assert pool.released(retired), "it never reported: a spawning slot frees"
    assert len(board.free) == 4
    pool.forked_warm()
    assert [type(e) for e in pool.stop_all()] == [Exit] and not pool.warming


def test_unnoticed_deaths_are_found_by_pid() -> None:
    pool = ProcessPool(None, warm_pool=1, preimport=None)
    busy = workload()
    pool.assign(busy)
    pool.forked_for(busy)
    warm = pool.forked_warm()
    pool.reported(warm.incarnation, 11, "warm-address")
    assert busy.process is not None
    busy.process.pid = 12
    busy.running["t"] = (1, None)  # type: ignore[assignment]
    assert pool.gone_unnoticed([busy], alive=lambda pid: pid == 11) == [busy.incarnation]
    assert pool.gone_unnoticed([busy], alive=lambda pid: False) == [busy.incarnation, warm.incarnation]
    assert pool.every_process([busy]) == [warm, busy.process]


def test_a_stopped_node_forks_nothing_more() -> None:
    pool = ProcessPool(None, warm_pool=2, preimport=None)
    waiting = workload()
    pool.assign(waiting)
    pool.stop_all()
    assert waiting.phase is Phase.RETIRING
    plan = pool.turn(now=0.0, stopping=True)
    assert plan.workloads == [] and plan.warm == 0


def test_modules_imported_cleanly_are_shared_once_and_never_after_a_spawner_died() -> None:
    pool = ProcessPool(None, warm_pool=0, preimport=None)
    assert pool.imports_to_share() == ()
    pool.imported("")  # a report that imported nothing
    pool.imported("app.one")
    pool.imported("app.one")
    pool.imported("app.two")
    assert pool.imports_to_share() == ("app.one", "app.two")
    assert pool.imports_to_share() == (), "each is told once"
    pool.imported("app.three")
    pool.spawner_replaced()  # it may have died importing one: none again, for this node's life
    pool.imported("app.four")
    assert pool.imports_to_share() == ()


def test_warm_processes_that_imported_the_app_themselves_are_replaced_once_the_spawner_has_it() -> None:
    board = TaskBoard(8)
    pool = ProcessPool(board, warm_pool=3, preimport="app")
    early = [pool.forked_warm() for _ in range(3)]  # forked before any process had imported "app"
    pool.reported(early[0].incarnation, 100, "a0")
    pool.reported(early[1].incarnation, 101, "a1")
    assert pool.stale_warm() == [], "nothing to replace while the Spawner does not have the module"
    pool.imported("app")
    assert pool.stale_warm() == early[:2] and not pool.warm, "the idle reported ones leave the pool"
    pool.reported(early[2].incarnation, 102, "a2")  # reports after: stale on arrival
    assert pool.stale_warm() == [early[2]] and pool.stale_warm() == []
    assert pool.turn(now=0.0, stopping=False).warm == 3, "refilled"
    late = pool.forked_warm()
    pool.reported(late.incarnation, 103, "b")
    assert pool.stale_warm() == [] and list(pool.warm) == [late], "forked with the module: kept"
    assert set(pool.every_process([])) == {*early, late}
    assert pool.gone_unnoticed([], alive=lambda pid: pid != 101) == [early[1].incarnation]
    for process in early:  # asked to exit, they end: nothing owed, no death, their board slots free
        assert pool.warm_exited(process.incarnation) is None and pool.retired_exited(process.incarnation) is None
        assert process.slot == -1
    assert pool.deaths == 0 and pool.preimport == "app" and set(pool.every_process([])) == {late}


def test_without_an_app_imported_ahead_no_warm_process_is_replaced() -> None:
    pool = ProcessPool(None, warm_pool=1, preimport=None)
    warm = pool.forked_warm()
    pool.reported(warm.incarnation, 100, "a")
    pool.imported("other")
    assert pool.stale_warm() == [] and list(pool.warm) == [warm]
