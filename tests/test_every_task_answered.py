"""Every accepted task gets one answer, whatever the handler, its app module or the caller does.

Each test here failed before the fix it shows (issue 8 of the project).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from flower_actors import ConfigError, ErrorKind, LocalFederation, NodeConfig, TaskIns, TaskRes, run_node
from tests import apps

Node = Callable[..., LocalFederation]


def add(workload: object, value: object, message_type: str = "add") -> TaskIns:
    return TaskIns.create(workload, value, message_type=message_type)  # type: ignore[arg-type]


def kinds(results: list[TaskRes]) -> list[str]:
    return [r.error.kind if r.error else "ok" for r in results]


# 1. An exception whose __str__ and __repr__ raise.


def test_an_unprintable_exception_costs_no_task_its_answer(node: Node) -> None:
    fed = node(app="tests.apps:Adder", long_poll=True)
    tasks = [add("w", 1), add("w", 2), add("w", 0, "broken_str"), add("w", 3), add("w", 0, "broken_str"), add("w", 4)]

    results = fed.driver().run(tasks, timeout=30)

    assert kinds(results) == ["ok", "ok", ErrorKind.HANDLER_ERROR, "ok", ErrorKind.HANDLER_ERROR, "ok"]
    assert [r.content for r in results if r.ok] == [1, 3, 6, 10], "the workload kept its state"
    error = results[2].error
    assert error is not None and error.exception_type == "UnprintableError"
    assert "UnprintableError" in error.message and "__str__ failed" in error.message
    assert type(error.message) is str and type(error.traceback) is str
    assert len({r.handler_pid for r in results}) == 1


# 2. An app module whose import kills the process.


@pytest.mark.parametrize("how", ["exit", "segfault"])
@pytest.mark.parametrize("as_default", [True, False], ids=["default-app", "workload-app"])
def test_an_app_whose_import_kills_the_process_is_answered_not_forked_forever(
    federation: Callable[..., LocalFederation], monkeypatch: pytest.MonkeyPatch, how: str, as_default: bool
) -> None:
    monkeypatch.setenv("FLOWER_ACTORS_TEST_IMPORT_DEATH", how)
    killer = "tests.apps_exit_at_import:App"
    if as_default:
        config = NodeConfig(app=killer, workload_apps={"good": "tests.apps:Adder"}, long_poll=True)
    else:
        config = NodeConfig(app="tests.apps:Adder", workload_apps={"bad": killer}, long_poll=True)
    fed = federation(config)
    driver = fed.driver()

    started = time.monotonic()
    bad = driver.run([add("bad", 1), add("bad", 2)], timeout=60)
    elapsed = time.monotonic() - started
    good = driver.run([add("good", 5), add("good", 6)], timeout=30)
    again = driver.run([add("bad", 3)], timeout=10)

    assert kinds(bad) == [ErrorKind.WORKLOAD_CLIENT_DIED] * 2
    message = bad[0].error.message  # type: ignore[union-attr]
    assert "died 4 times in a row before it ran a task" in message and killer in message
    assert elapsed < 30
    assert [r.content for r in good] == [5, 11], "every other workload is served"
    assert kinds(again) == [ErrorKind.WORKLOAD_CLIENT_DIED], "answered at once while given up"
    status = fed.status()
    assert 4 <= status.deaths <= 10, status
    assert status.workloads_created <= 6, f"bounded restarts, not a fork loop: {status}"
    time.sleep(2.0)
    assert fed.status().workloads_created == status.workloads_created, "no forks once given up"


# 3. Several Drivers, each in its own thread.


def test_drivers_in_threads_each_get_their_own_replies(node: Node) -> None:
    fed = node(app="tests.apps:Adder", long_poll=True)
    outcomes: dict[int, object] = {}

    def work(index: int) -> None:
        try:
            driver = fed.driver(f"thread-{index}")
            totals: list[int] = []
            for _ in range(5):
                ids = driver.submit([add(f"w{index}", 1) for _ in range(4)])
                found = driver.wait_for(ids, timeout=60)
                totals.extend(found[i].content for i in ids)
                status = fed.status()  # the federation's own asks from threads too
                assert status.node_id == 0
            assert driver.collect() == []
            outcomes[index] = totals
        except BaseException as exc:  # reported by the main thread
            outcomes[index] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert outcomes == {i: list(range(1, 21)) for i in range(4)}


# 4. Driver.stop_workload is ordered with the workload's tasks in every phase of its WorkloadClient.


@pytest.mark.parametrize("phase", ["warm", "forked", "started", "busy"])
def test_stop_workload_is_ordered_with_the_tasks_around_it(node: Node, phase: str) -> None:
    fed = node(app="tests.apps:Adder", long_poll=True, warm_pool=0 if phase == "forked" else 4)
    driver = fed.driver()
    if phase in ("started", "busy"):
        assert driver.run([add("w", 0)], timeout=30)[0].content == 0
    first = "slow_add" if phase == "busy" else "add"

    for attempt in range(2):
        ids = driver.submit([add("w", 1, first), add("w", 2)])
        driver.stop_workload("w")
        ids += driver.submit([add("w", 5)])
        found = driver.wait_for(ids, timeout=30)
        assert [found[i].content for i in ids] == [1, 3, 5], f"attempt {attempt}: {[found[i] for i in ids]}"
        driver.stop_workload("w")


def test_stop_workload_in_one_batch_between_tasks(node: Node) -> None:
    fed = node(app="tests.apps:Adder", poll_interval=0.5)  # periodic: everything arrives in one pull
    driver = fed.driver()
    ids = driver.submit([add("w", 1), add("w", 2)])
    driver.stop_workload("w")
    ids += driver.submit([add("w", 5), add("w", 1)])
    driver.stop_workload("w")
    driver.stop_workload("w")  # a second stop with nothing between is harmless
    ids += driver.submit([add("w", 7)])
    found = driver.wait_for(ids, timeout=30)
    assert [found[i].content for i in ids] == [1, 3, 5, 6, 7]
    assert len({found[i].handler_pid for i in ids}) == 3, "a fresh WorkloadClient after each stop"


# 5. A result whose pickling raises SystemExit.


def test_a_result_whose_pickling_raises_system_exit_is_unpicklable_and_the_state_stays(node: Node) -> None:
    fed = node(app="tests.apps:Adder", long_poll=True)
    results = fed.driver().run([add("w", 2), add("w", 0, "exit_on_pickle"), add("w", 3)], timeout=30)
    assert kinds(results) == ["ok", ErrorKind.UNPICKLABLE_RESULT, "ok"]
    assert "SystemExit" in results[1].error.message  # type: ignore[union-attr]
    assert results[2].content == 5 and len({r.handler_pid for r in results}) == 1


# 6. NodeStatus counters agree with what the driver received.


def test_status_counters_match_the_results_a_driver_received(node: Node) -> None:
    fed = node(app="tests.apps:Adder", long_poll=True, task_deadline_s=1.0)
    driver = fed.driver()
    tasks: list[TaskIns] = []
    for w in range(6):
        tasks += [add(w, 1), add(w, 0, "broken_str"), add(w, 0, "exit_on_pickle"), add(w, 0, "nope")]
        tasks += [add(w, 0, "exit") if w % 2 else add(w, 5.0, "sleep"), add(w, 1)]
    tasks.append(TaskIns("bad-content", 0, "w", "add", b"\x80\x05 not a pickle", time.time()))

    results = driver.run(tasks, timeout=90)
    status = fed.status()

    by_kind = Counter(kinds(results))
    assert by_kind == {
        "ok": 12,
        ErrorKind.HANDLER_ERROR: 6,
        ErrorKind.UNPICKLABLE_RESULT: 6,
        ErrorKind.UNKNOWN_MESSAGE_TYPE: 6,
        ErrorKind.WORKLOAD_CLIENT_DIED: 3,
        ErrorKind.DEADLINE_EXCEEDED: 3,
        ErrorKind.BAD_TASK: 1,
    }
    assert status.results_pushed == len(results) == len(tasks)
    assert status.errors == sum(1 for r in results if r.error is not None) == 25
    assert status.deadline_kills == by_kind[ErrorKind.DEADLINE_EXCEEDED]
    assert status.deaths == by_kind[ErrorKind.WORKLOAD_CLIENT_DIED] + status.deadline_kills
    assert status.tasks_pulled == len(tasks) and status.tasks_in_flight == 0


# 7. An app that can never load is refused when configured.


def test_an_app_no_import_can_find_is_refused_at_configuration() -> None:
    class Local:
        pass

    for app in (apps.module_level_lambda, Local, lambda task: None, "tests.apps:<lambda>"):
        with pytest.raises(ConfigError, match=r"not importable|must look like"):
            NodeConfig(app=app)
        with pytest.raises(ConfigError), run_node(app=app):
            pass  # pragma: no cover - never started
    with pytest.raises(ConfigError):
        NodeConfig(app="tests.apps:Adder", workload_apps={"w": apps.module_level_lambda})


def test_register_workload_refuses_an_unloadable_app(node: Node) -> None:
    fed = node(app="tests.apps:Adder")
    with pytest.raises(ConfigError, match="not importable"):
        fed.register_workload("w", apps.module_level_lambda)


# 8. A finished task's result does not wait for the next handler.


@pytest.mark.parametrize("mode", ["long-poll", "periodic"])
def test_a_result_leaves_before_the_next_long_handler_ends(node: Node, mode: str) -> None:
    fed = node(app="tests.apps:Adder", long_poll=mode == "long-poll", poll_interval=0.5)
    driver = fed.driver()
    driver.run([add(w, 1) for w in range(6)], timeout=30)  # "add" is known to be short now
    tasks: list[TaskIns] = []
    for w in range(6):
        tasks += [add(w, 1), add(w, 1.5, "sleep"), add(w, 1.5, "sleep"), add(w, 1)]

    results = driver.run(tasks, timeout=60)

    assert all(r.ok for r in results)
    for r in results:
        assert r.stored_at is not None and r.finished_at is not None
        assert r.stored_at - r.finished_at < 1.0, f"{r.message_type} result held {r.stored_at - r.finished_at:.3f} s"


def test_results_of_many_short_tasks_still_travel_together(node: Node) -> None:
    fed = node(app="tests.apps:Adder", long_poll=True)
    results = fed.driver().run([add("w", 1) for _ in range(500)], timeout=60)
    assert [r.content for r in results] == list(range(1, 501))
    assert len({r.handler_pid for r in results}) == 1 and os.getpid() not in {r.handler_pid for r in results}


# The same class of fault next to these: a result too large to travel, and many large results at once.


def test_results_over_the_limit_are_answered_and_large_ones_travel_in_bounded_messages(node: Node) -> None:
    fed = node(app="tests.apps:big_result", long_poll=True, max_content_bytes=8 * 1024 * 1024)
    sizes = [9 * 1024 * 1024, 6 * 1024 * 1024, 6 * 1024 * 1024, 6 * 1024 * 1024, 10]
    results = fed.driver().run([TaskIns.create("w", n) for n in sizes], timeout=60)
    assert kinds(results) == [ErrorKind.UNPICKLABLE_RESULT, "ok", "ok", "ok", "ok"]
    assert "over this node's limit of 8388608" in results[0].error.message  # type: ignore[union-attr]
    assert [len(r.content) for r in results[1:]] == sizes[1:]


def test_max_content_bytes_is_bounded_by_the_frame_limit() -> None:
    with pytest.raises(ConfigError, match="at most"):
        NodeConfig(max_content_bytes=512 * 1024 * 1024)


@pytest.mark.parametrize("warm_pool", [4, 0], ids=["warm", "forked"])
def test_an_app_whose_import_hangs_is_killed_at_the_tasks_deadline(node: Node, warm_pool: int) -> None:
    fed = node(
        app="tests.apps:Adder",
        workload_apps={"slow": "tests.apps_hang_at_import:App"},
        long_poll=True,
        task_deadline_s=1.0,
        warm_pool=warm_pool,
    )
    driver = fed.driver()
    started = time.monotonic()
    ids = driver.submit([add("slow", 1), add("slow", 2)])
    good = driver.run([add("good", 5)], timeout=30)
    found = driver.wait_for(ids, timeout=30)

    assert [found[i].error.kind if found[i].error else "ok" for i in ids] == [ErrorKind.DEADLINE_EXCEEDED] * 2
    assert time.monotonic() - started < 15
    assert [r.content for r in good] == [5], "other workloads are served meanwhile"
    status = fed.status()
    assert status.deadline_kills == 2 and status.tasks_in_flight == 0
