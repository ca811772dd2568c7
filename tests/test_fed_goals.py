"""The FED's goals 1-5, each shown on real multiprocess actor systems."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

from flower_actors import LocalFederation, TaskIns, TaskRes
from flower_actors.stats import forward_latencies, result_latencies

Node = Callable[..., LocalFederation]


def by_workload(results: list[TaskRes]) -> dict[object, list[TaskRes]]:
    grouped: dict[object, list[TaskRes]] = defaultdict(list)
    for r in results:
        grouped[r.workload_id].append(r)
    return grouped


def test_goal1_workload_clients_created_on_demand_and_once(node: Node) -> None:
    # Prepare
    fed = node(app="tests.apps:Recorder", long_poll=True)
    assert fed.status().workloads_live == 0

    # Execute
    tasks = [TaskIns.create(w, i) for i, w in enumerate(["a", "b", "a", "c", "b", "a"])]
    results = fed.driver().run(tasks, timeout=30)

    # Assert
    status = fed.status()
    assert status.workloads_created == 3 and status.workloads_live == 3
    pids = {w: {r.content["pid"] for r in rs} for w, rs in by_workload(results).items()}
    assert all(len(p) == 1 for p in pids.values()), pids
    assert len({next(iter(p)) for p in pids.values()}) == 3, "each workload has its own process"
    assert set(status.handler_pids) == {next(iter(p)) for p in pids.values()}


def test_goal2_periodic_pull_cadence(node: Node) -> None:
    # Prepare
    interval = 0.4
    fed = node(app="tests.apps:Recorder", poll_interval=interval)
    anchor = fed.started[0].next_pull_at - interval
    driver = fed.driver()
    time.sleep(0.05)

    # Execute: tasks submitted at odd moments wait for the next tick
    ids = []
    for _ in range(4):
        ids.append(driver.submit_task("w", "x"))
        time.sleep(0.23)
    results = list(driver.wait_for(ids, timeout=30).values())
    pulls_after = fed.status().pulls
    elapsed = time.time() - anchor

    # Assert
    for r in results:
        assert r.pulled_at is not None and r.created_at is not None
        assert r.pulled_at - r.created_at <= interval + 0.15
        phase = (r.pulled_at - anchor) % interval
        assert min(phase, interval - phase) < 0.1, f"pulled off the tick grid (phase {phase:.3f} s)"
    expected = elapsed / interval
    assert expected - 2 <= pulls_after <= expected + 2, (pulls_after, expected)


def test_goal3_tasks_reach_their_workload_in_order(node: Node) -> None:
    # Prepare
    fed = node(app="tests.apps:Recorder", long_poll=True)
    workloads = [1, 2, 3, 4]
    tasks = [TaskIns.create(w, f"{w}-{i}") for i in range(6) for w in workloads]

    # Execute
    results = fed.driver().run(tasks, timeout=30)

    # Assert: each workload saw exactly its own contents, in submission order
    for w, rs in by_workload(results).items():
        final = max((r.content["history"] for r in rs), key=len)
        assert final == [f"{w}-{i}" for i in range(6)]
        assert {r.content["workload"] for r in rs} == {w}


def test_goal3_forwarded_within_milliseconds_with_long_poll(node: Node) -> None:
    fed = node(app="flower_actors.examples:EchoClient", long_poll=True)
    driver = fed.driver()
    driver.run([TaskIns.create("warm", 0)], timeout=30)  # the workload's process exists now

    results = []
    for i in range(20):
        results += driver.run([TaskIns.create("warm", i)], timeout=30)

    created_to_start = sorted(r.started_at - r.created_at for r in results if r.started_at and r.created_at)
    assert created_to_start[len(created_to_start) // 2] < 0.1, created_to_start


def test_goal4_every_task_answered_and_pushed_at_once(node: Node) -> None:
    # Prepare: a long poll interval, so a push that waited for a pull would show
    fed = node(app="tests.apps:Sleeper", poll_interval=2.0)
    tasks = [TaskIns.create(w, 0.05) for w in range(5) for _ in range(3)]

    # Execute
    results = fed.driver().run(tasks, timeout=30)

    # Assert
    assert sorted(r.ins_id for r in results) == sorted(t.task_id for t in tasks)
    assert all(r.ok for r in results)
    latencies = result_latencies(results)
    assert len(latencies) == len(tasks) and max(latencies) < 0.5, latencies


def test_goal5_workloads_run_concurrently(node: Node) -> None:
    # Prepare
    fed = node(app="tests.apps:Sleeper", long_poll=True)
    tasks = [TaskIns.create(w, 1.0) for w in range(8)]

    # Execute
    start = time.monotonic()
    results = fed.driver().run(tasks, timeout=60)
    elapsed = time.monotonic() - start

    # Assert: eight 1 s handlers, in parallel, in well under 8 s
    assert all(r.ok for r in results)
    assert elapsed < 4.0, f"8 x 1 s handlers took {elapsed:.1f} s"
    assert len({r.content["pid"] for r in results}) == 8


def test_goal5_slow_workload_does_not_hold_up_another(node: Node) -> None:
    fed = node(app="tests.apps:Sleeper", long_poll=True)
    driver = fed.driver()
    slow = driver.submit_task("slow", 3.0)
    time.sleep(0.2)
    fast_ids = driver.submit([TaskIns.create("fast", 0.01) for _ in range(5)])

    start = time.monotonic()
    fast = driver.wait_for(fast_ids, timeout=30)
    fast_elapsed = time.monotonic() - start
    slow_result = driver.wait_for([slow], timeout=30)[slow]

    assert fast_elapsed < 1.5, f"the fast workload waited {fast_elapsed:.2f} s behind the slow one"
    assert all(r.content["end"] < slow_result.content["end"] for r in fast.values())


def test_forward_latency_counts_from_when_a_task_could_start(node: Node) -> None:
    fed = node(app="tests.apps:Sleeper", long_poll=True)
    results = fed.driver().run([TaskIns.create("w", 0.2) for _ in range(4)], timeout=30)
    latencies = forward_latencies(results)
    # queued behind its predecessors, a task is not charged for the wait
    assert len(latencies) == 4 and sorted(latencies)[2] < 0.1, latencies


def test_warm_pool_gives_new_workloads_a_started_process_and_refills(node: Node) -> None:
    fed = node(app="tests.apps:Recorder", long_poll=True, warm_pool=3)
    deadline = time.monotonic() + 10
    while fed.status().workloads_warm < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fed.status().workloads_warm == 3

    results = fed.driver().run([TaskIns.create(w, "x") for w in ("a", "b", "c", "d", "e")], timeout=30)

    assert all(r.ok for r in results) and len({r.content["pid"] for r in results}) == 5
    while fed.status().workloads_warm < 3 and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    status = fed.status()
    assert status.workloads_warm == 3 and status.workloads_live == 5 and status.workloads_created == 5


def test_no_warm_pool(node: Node) -> None:
    fed = node(app="tests.apps:Recorder", long_poll=True, warm_pool=0)
    assert fed.driver().run([TaskIns.create(1, "x")], timeout=30)[0].ok
    assert fed.status().workloads_warm == 0
