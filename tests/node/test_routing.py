"""The workload table, without processes."""

from __future__ import annotations

from flower_actors import ErrorKind, NodeConfig, StopWorkload
from flower_actors.node.routing import WorkloadTable
from flower_actors.node.workload import STOP, Answer, Phase
from tests.node.parts import config, live, task


def test_a_batch_is_routed_in_order_and_existing_workloads_are_fed_first() -> None:
    table = WorkloadTable(config())
    old = live(table.route(task("old"), 0.0)[0])  # type: ignore[index]
    old.running.clear()
    items = [task("new"), task("old"), StopWorkload("old"), task("old"), task("unknown-app-less")]
    routed = table.route_batch(items, lambda item: item, 0.0)
    assert [w.workload_id for w in routed.new] == ["new", "unknown-app-less"]
    assert [w.workload_id for w in routed.feed] == ["old", "new", "unknown-app-less"]
    assert list(old.queue)[1:] == [items[1], STOP, items[3]] and old.stops == 1


def test_no_app_means_unknown_workload() -> None:
    table = WorkloadTable(NodeConfig(workload_apps={"a": "tests.apps:Adder"}))
    refused = table.route(task("b"), 0.0)
    assert isinstance(refused, Answer) and refused.kind == ErrorKind.UNKNOWN_WORKLOAD


def test_tasks_are_fed_up_to_the_window_and_never_past_a_stop() -> None:
    table = WorkloadTable(config())
    workload = live(table.route(task(), 0.0)[0])  # type: ignore[index]
    for _ in range(3):
        table.route(task(), 0.0)
    table.route_stop("w")
    table.route(task(), 0.0)
    assert len(table.next_tasks(workload, window=2)) == 2 and len(workload.running) == 2
    assert len(table.next_tasks(workload, window=64)) == 2, "the stop holds back the task after it"
    assert not table.stop_due(workload), "tasks before the stop still run"
    workload.running.clear()
    assert table.stop_due(workload)
    fresh = table.pass_stop(workload)
    assert fresh is not None and fresh is not workload and fresh.queued == 1 and table.get("w") is fresh


def test_a_stop_before_the_app_ran_keeps_the_same_record() -> None:
    table = WorkloadTable(config())
    workload = table.route(task(), 0.0)[0]  # type: ignore[index]
    workload.queue.clear()
    workload.stops = 0
    table.route_stop("w")
    table.route(task(), 0.0)
    assert table.pass_stop(workload) is workload and workload.queued == 1


def test_deaths_without_progress_back_off_then_give_up_and_progress_resets() -> None:
    table = WorkloadTable(config())
    workload = table.route(task(), 0.0)[0]  # type: ignore[index]
    delays = []
    for now in (0.0, 1.0, 2.0):
        plan = table.restart(workload, progressed=False, now=now, stopping=False)
        assert plan.workload is not None and plan.workload.phase is Phase.HELD
        delays.append(plan.delay)
        workload = table.restart_due("w", plan.workload.held)  # type: ignore[assignment]
        assert workload is not None
    assert delays == [0.1, 0.2, 0.4]
    plan = table.restart(workload, progressed=False, now=3.0, stopping=False)
    assert plan.workload is None and plan.gave_up and [a.kind for a in plan.answers] == [ErrorKind.WORKLOAD_CLIENT_DIED]
    refused = table.route(task(), 4.0)
    assert isinstance(refused, Answer) and "died 4 times in a row" in refused.message
    assert not isinstance(table.route(task(), 40.0), Answer), "tried again after GIVE_UP_FOR"
    workload = table.get("w")
    assert workload is not None
    table.restart(workload, progressed=False, now=41.0, stopping=False)
    table.progressed("w")
    assert "w" not in table.restarts


def test_the_cap_picks_the_least_recently_used_idle_workload() -> None:
    table = WorkloadTable(config(max_workloads=2))
    a = live(table.route(task("a"), 0.0)[0])  # type: ignore[index]
    b = live(table.route(task("b"), 0.0)[0])  # type: ignore[index]
    for w in (a, b):
        w.queue.clear()
    a.last_active, b.last_active = 5.0, 3.0
    assert table.at_cap() and table.least_recently_used_idle() is b
    b.running["x"] = (1, task("b"))
    assert table.least_recently_used_idle() is a


def test_stopping_answers_waiting_workloads_and_stop_answers_the_queue() -> None:
    table = WorkloadTable(config())
    parked = table.route(task("p"), 0.0)[0]  # type: ignore[index]
    assert parked.phase is Phase.PARKED
    answers = table.drop_waiting()
    assert [a.kind for a in answers] == [ErrorKind.NODE_SHUTTING_DOWN] and table.get("p") is None
    workload = live(table.route(task("s"), 0.0)[0])  # type: ignore[index]
    assert [a.kind for a in table.stop(workload, ErrorKind.WORKLOAD_STOPPED, "stopped")] == [ErrorKind.WORKLOAD_STOPPED]
    assert table.register("s", config().default_app) is None  # type: ignore[arg-type]
