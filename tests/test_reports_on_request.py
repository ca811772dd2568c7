"""A WorkloadClient reports finished tasks only when the LeadClient waits on it; nothing waits longer for that.

Most slices send no ``TasksDone``: the LeadClient reads what finished on
the task board when it needs to. These check, with real processes, the
cases where it must hear at once: a node paused for room, a node stopping
with tasks running, and a workload with far more tasks than one process
may hold.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from flower_actors import LocalFederation, TaskIns
from flower_actors.node.routing import WINDOW


def test_a_node_paused_for_room_resumes_as_soon_as_tasks_finish(node: Callable[..., LocalFederation]) -> None:
    fed = node(app="tests.apps:Adder", long_poll=True, max_in_flight=4)
    driver = fed.driver()
    started = time.monotonic()
    results = driver.run([TaskIns.create(w % 2, 1, message_type="add") for w in range(200)], timeout=60)
    took = time.monotonic() - started
    assert len(results) == 200 and all(r.ok for r in results)
    # Paused after every 4 tasks: with no report it would wait for the next housekeeping (0.5 s), 25 s in all.
    assert took < 10.0, f"200 short tasks, 4 in flight at a time, took {took:.1f} s"


def test_a_node_stopping_with_tasks_running_stops_when_they_end(node: Callable[..., LocalFederation]) -> None:
    fed = node(app="tests.apps:Sleeper", long_poll=True)
    driver = fed.driver()
    driver.submit([TaskIns.create(w, 0.5) for w in range(3)])
    deadline = time.monotonic() + 30
    while fed.status().tasks_in_flight < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    collected: list[object] = []
    collector = threading.Thread(target=lambda: collected.extend(driver.collect(wait=5.0)), daemon=True)
    collector.start()
    started = time.monotonic()
    assert fed.stop(timeout=30.0) == []
    took = time.monotonic() - started
    collector.join(10)
    assert took < 10.0, f"the node waited {took:.1f} s for tasks of 0.5 s (its stop timeout is 30 s)"


def test_a_workload_with_many_windows_of_tasks_gets_them_all_in_order(node: Callable[..., LocalFederation]) -> None:
    fed = node(app="tests.apps:Adder", long_poll=True)
    count = WINDOW * 6 + 5
    results = fed.driver().run([TaskIns.create("w", 1, message_type="add") for _ in range(count)], timeout=60)
    assert [r.content for r in results] == list(range(1, count + 1))
