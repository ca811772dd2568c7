"""Faults with real processes: every accepted task gets exactly one answer and the node survives."""

from __future__ import annotations

import os
import pickle
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flower_actors import (
    AppSpec,
    ErrorKind,
    GetNodeStatus,
    LeadClientStarted,
    LocalFederation,
    NodeConfig,
    NodeStatus,
    NodeStopped,
    StartLeadClient,
    StopNode,
    SystemConfig,
    TaskIns,
    TaskRes,
    run_node,
)
from flower_actors.messages import dump_content
from flower_actors.runtime.proc import process_alive as alive
from flower_actors.runtime.proc import read_stat
from flower_actors.system import session_processes
from tests.scripted_server import GetPushed, Pushed, ScriptBatch, ScriptedServer

Node = Callable[..., LocalFederation]


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


# 1. A handler that raises.


def test_handler_that_raises_runs_once_and_the_workload_goes_on(node: Node, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    fed = node(app=AppSpec("tests.apps:Faulty", {"log": str(log)}), long_poll=True)
    tasks = [TaskIns.create(1, "raise"), TaskIns.create(1, "sysexit"), TaskIns.create(1, "ok")]

    results = fed.driver().run(tasks, timeout=30)

    assert [r.error.kind if r.error else "ok" for r in results] == [ErrorKind.HANDLER_ERROR] * 2 + ["ok"]
    assert results[0].error is not None and results[0].error.exception_type == "ValueError"
    assert "asked to raise" in results[0].error.message and "Traceback" in results[0].error.traceback
    assert results[1].error is not None and results[1].error.exception_type == "SystemExit"
    assert log.read_text().split() == [t.task_id for t in tasks], "each handler ran exactly once"
    assert len({r.handler_pid for r in results}) == 1, "same process throughout"


# 2. A handler process that dies.


@pytest.mark.parametrize("how", ["exit", "kill", "segfault"])
def test_dead_process_answers_its_task_and_the_next_gets_a_fresh_client(node: Node, how: str) -> None:
    fed = node(app="tests.apps:Faulty", long_poll=True)
    driver = fed.driver()
    other = driver.run([TaskIns.create("other", "ok")], timeout=30)[0]
    first = driver.run([TaskIns.create("w", "ok")], timeout=30)[0]

    results = driver.run([TaskIns.create("w", how), TaskIns.create("w", "ok"), TaskIns.create("w", "ok")], timeout=30)
    other_after = driver.run([TaskIns.create("other", "ok")], timeout=30)[0]

    died = results[0]
    assert died.error is not None and died.error.kind == ErrorKind.WORKLOAD_CLIENT_DIED
    assert str(first.content["pid"]) in died.error.message
    assert all(r.ok for r in results[1:]), [r.error for r in results[1:]]
    assert results[1].content["pid"] != first.content["pid"], "a fresh WorkloadClient"
    assert not alive(first.content["pid"])
    assert other_after.content["pid"] == other.content["pid"], "other workloads untouched"
    status = fed.status()
    assert status.deaths == 1 and status.workloads_live == 2


def test_a_dead_spawner_is_replaced_and_every_task_still_answered(node: Node) -> None:
    fed = node(app="tests.apps:Sleeper", long_poll=True)
    driver = fed.driver()
    before = driver.run([TaskIns.create("a", 0), TaskIns.create("b", 0)], timeout=30)
    parents = {read_stat(r.content["pid"]).ppid for r in before}  # type: ignore[union-attr]
    assert len(parents) == 1 and fed.status().pid not in parents, "forked by one Spawner, not by the LeadClient"
    spawner = parents.pop()
    held = driver.submit([TaskIns.create("a", 30)])
    wait_until(lambda: fed.status().tasks_in_flight == 1)
    time.sleep(0.3)  # the handler runs

    os.kill(spawner, signal.SIGKILL)
    died = driver.wait_for(held, timeout=30)[held[0]]
    after = driver.run([TaskIns.create("a", 0), TaskIns.create("b", 0), TaskIns.create("c", 0)], timeout=30)

    assert died.error is not None and died.error.kind == ErrorKind.WORKLOAD_CLIENT_DIED, died
    assert all(r.ok for r in after), [r.error for r in after]
    assert not ({r.content["pid"] for r in after} & {r.content["pid"] for r in before}), "fresh processes"
    assert not any(alive(r.content["pid"]) for r in before), "the old Spawner's processes were killed"
    new_parents = {read_stat(r.content["pid"]).ppid for r in after}  # type: ignore[union-attr]
    assert len(new_parents) == 1 and spawner not in new_parents


# 3. A handler that hangs.


@pytest.mark.parametrize("where", ["node", "workload", "task"])
def test_hung_handler_is_killed_at_its_deadline(federation: Callable[..., LocalFederation], where: str) -> None:
    app = AppSpec("tests.apps:Faulty", deadline_s=0.5 if where == "workload" else None)
    fed = federation(NodeConfig(app=app, long_poll=True, task_deadline_s=0.5 if where == "node" else None))
    driver = fed.driver()
    before = driver.run([TaskIns.create("w", "ok")], timeout=30)[0]
    hang = TaskIns.create("w", "hang", deadline_s=0.5 if where == "task" else None)

    start = time.monotonic()
    results = driver.run([hang, TaskIns.create("w", "ok")], timeout=30)
    elapsed = time.monotonic() - start

    assert results[0].error is not None and results[0].error.kind == ErrorKind.DEADLINE_EXCEEDED
    assert "0.5 s" in results[0].error.message
    assert results[1].ok and results[1].content["pid"] != before.content["pid"]
    assert elapsed < 5.0
    wait_until(lambda: not alive(before.content["pid"]), 5.0)
    assert fed.status().deadline_kills == 1


def test_a_task_that_finishes_in_time_is_not_killed(node: Node) -> None:
    fed = node(app="tests.apps:Sleeper", long_poll=True, task_deadline_s=2.0)
    results = fed.driver().run([TaskIns.create("w", 0.3) for _ in range(3)], timeout=30)
    assert all(r.ok for r in results) and len({r.content["pid"] for r in results}) == 1


# 4. A server that fails or disappears.


@pytest.mark.parametrize("mode", ["silent", "error"])
def test_server_outage_pulls_back_off_and_results_are_kept(node: Node, mode: str) -> None:
    fed = node(app="tests.apps:Sleeper", long_poll=True, long_poll_wait=0.5, request_timeout=0.5, retry_backoff_max=0.4)
    driver = fed.driver()
    running = driver.submit([TaskIns.create(w, 0.6) for w in range(4)])
    wait_until(lambda: fed.status().tasks_in_flight == 4)

    fed.set_server_fault(mode)  # results finish while the server is down
    waiting = driver.submit([TaskIns.create(w, 0.0) for w in range(4)])
    time.sleep(2.5)
    during = fed.status()
    assert driver.collect() == [], "nothing reaches the driver while the server is down"
    fed.set_server_fault(None)
    results = driver.wait_for(running + waiting, timeout=30)

    assert during.pull_failures >= 1 and during.unpushed == 4
    assert all(r.ok for r in results.values()) and len(results) == 8
    status = fed.server_status()
    assert status.stored == 8 and status.queued == ()


def test_duplicate_and_malformed_tasks_from_the_server(tmp_path: Path) -> None:
    with run_node(NodeConfig(app="tests.apps:Recorder", max_content_bytes=1000)) as fed:
        server = fed.system.createActor(ScriptedServer)
        lead = fed.system.createActor("flower_actors.lead_client.LeadClient")
        good = TaskIns.create("w", "good")
        bad_node = TaskIns.create("w", "x", node_id=99)
        oversized = TaskIns.create("w", "x" * 5000)
        unpicklable = TaskIns(new_task_id := "unpicklable-content", 0, "w", "", b"\x80\x05not a pickle", time.time())
        wrong_type = TaskIns("wrong-type", 0, 3.5, "", dump_content(1), time.time())  # type: ignore[arg-type]
        items: list[Any] = [good, good, bad_node, oversized, unpicklable, wrong_type, {"task": 1}, None, 42]
        fed.system.ask(server, ScriptBatch(tuple(items)), 10)
        after = TaskIns.create("w", "after")
        fed.system.ask(server, ScriptBatch((after,)), 10)
        config = NodeConfig(app="tests.apps:Recorder", max_content_bytes=1000, poll_interval=0.2)
        started = fed.system.ask(lead, StartLeadClient(config, server), 10)
        assert isinstance(started, LeadClientStarted) and started.error is None

        def pushed() -> dict[str, TaskRes]:
            reply = fed.system.ask(server, GetPushed(), 10)
            assert isinstance(reply, Pushed)
            return {r.ins_id: r for r in reply.results}

        results = wait_until(lambda: (lambda p: p if len(p) >= 6 else None)(pushed()), 15.0)
        time.sleep(0.5)
        results = pushed()
        status = fed._ask(lead, GetNodeStatus(), NodeStatus)
        fed._ask(lead, StopNode(1.0), NodeStopped, 15)

    assert set(results) == {good.task_id, bad_node.task_id, oversized.task_id, new_task_id, "wrong-type", after.task_id}
    assert results[good.task_id].ok, "the duplicate was dropped, the original ran"
    assert results[after.task_id].ok and results[after.task_id].content["history"] == ["good", "after"]
    for bad in (bad_node.task_id, oversized.task_id, new_task_id, "wrong-type"):
        assert results[bad].error is not None and results[bad].error.kind == ErrorKind.BAD_TASK, bad
    assert "addressed to node 99" in results[bad_node.task_id].error.message  # type: ignore[union-attr]
    assert "exceeds this node's limit of 1000" in results[oversized.task_id].error.message  # type: ignore[union-attr]
    assert "cannot be unpickled" in results[new_task_id].error.message  # type: ignore[union-attr]
    assert status.duplicates_dropped == 1 and status.bad_input == 3


def test_bad_node_configuration_is_refused_clearly(node: Node) -> None:
    fed = node(app="tests.apps:Recorder")
    lead = fed.system.createActor("flower_actors.lead_client.LeadClient")
    reply = fed.system.ask(lead, StartLeadClient({"poll_interval": -1}, fed.server), 10)  # type: ignore[arg-type]
    assert isinstance(reply, LeadClientStarted) and "config must be a NodeConfig" in (reply.error or "")
    assert fed.driver().run([TaskIns.create(1, "x")], timeout=30)[0].ok, "the running node is unaffected"


def test_unpicklable_content_is_refused_at_the_driver(node: Node) -> None:
    from flower_actors import BadContent

    with pytest.raises(BadContent, match="cannot be pickled"):
        TaskIns.create(1, lambda: None)


# 6. Resources.


def test_cap_stops_the_least_recently_used_idle_workload(node: Node) -> None:
    fed = node(app="tests.apps:Recorder", long_poll=True, max_workloads=2)
    driver = fed.driver()
    a1 = driver.run([TaskIns.create("a", 1)], timeout=30)[0]
    driver.run([TaskIns.create("b", 1)], timeout=30)
    driver.run([TaskIns.create("a", 2)], timeout=30)  # b is now the least recently used

    driver.run([TaskIns.create("c", 1)], timeout=30)
    status = fed.status()
    a3 = driver.run([TaskIns.create("a", 3)], timeout=30)[0]
    b2 = driver.run([TaskIns.create("b", 2)], timeout=30)[0]

    assert status.workloads_live == 2 and status.workloads_stopped == 1
    assert a3.content["history"] == [1, 2, 3] and a3.content["pid"] == a1.content["pid"], "a kept its process"
    assert b2.content["history"] == [2], "b was stopped and started again with fresh state"
    assert fed.status().workloads_live == 2


def test_at_the_cap_with_every_workload_busy_new_ones_wait(node: Node) -> None:
    fed = node(app="tests.apps:Sleeper", long_poll=True, max_workloads=1)
    driver = fed.driver()
    slow = driver.submit_task("slow", 1.0)
    time.sleep(0.3)
    waiting = driver.submit_task("next", 0.0)
    time.sleep(0.2)
    parked = fed.status()

    results = driver.wait_for([slow, waiting], timeout=30)

    assert parked.workloads_parked == 1 and parked.workloads_live == 1
    assert results[waiting].content["start"] >= results[slow].content["end"]


def test_idle_timeout_and_explicit_stops(node: Node) -> None:
    fed = node(app="tests.apps:Recorder", long_poll=True, idle_timeout_s=0.6)
    driver = fed.driver()
    driver.run([TaskIns.create(w, 0) for w in ("a", "b")], timeout=30)
    assert fed.status().workloads_live == 2
    wait_until(lambda: fed.status().workloads_live == 0, 5.0)

    driver.run([TaskIns.create(w, 0) for w in ("c", "d")], timeout=30)
    assert fed.stop_workload("c") is True and fed.stop_workload("nope") is False
    driver.stop_workload("d", node_id=0)  # from the server, in order with the tasks
    wait_until(lambda: fed.status().workloads_live == 0, 5.0)
    assert fed.status().workloads_stopped == 4


def test_saturated_node_stops_pulling_until_it_has_room(node: Node) -> None:
    fed = node(app="tests.apps:Sleeper", long_poll=True, max_in_flight=3)
    driver = fed.driver()
    ids = driver.submit([TaskIns.create(w % 2, 0.15) for w in range(12)])
    samples = []
    deadline = time.monotonic() + 30
    results: dict[str, TaskRes] = {}
    while len(results) < len(ids) and time.monotonic() < deadline:
        samples.append(fed.status())
        results.update({r.ins_id: r for r in driver.collect(wait=0.05)})

    assert len(results) == 12 and all(r.ok for r in results.values())
    assert max(s.tasks_in_flight for s in samples) <= 3
    assert any(s.pulling_paused for s in samples)


def test_a_node_paused_on_unpushed_results_resumes_as_the_sender_catches_up(node: Node) -> None:
    # The Sender reports an acknowledged push at once only while the LeadClient may be paused on it.
    fed = node(app="tests.apps:Faulty", long_poll=True, max_unpushed=1)
    results = fed.driver().run([TaskIns.create(w % 6, "ok") for w in range(120)], timeout=60)
    assert len(results) == 120 and all(r.ok for r in results)
    status = fed.status()
    assert status.results_pushed == 120 and status.unpushed == 0


# 7. Shutdown.


def test_graceful_stop_lets_running_tasks_finish_and_answers_stuck_ones(node: Node) -> None:
    fed = node(app="tests.apps:Faulty", long_poll=True)
    driver = fed.driver()
    ids = driver.submit([TaskIns.create("stuck", "hang"), TaskIns.create("quick", "ok")])
    wait_until(lambda: len(fed.status().handler_pids) == 2)
    pids = fed.status().handler_pids

    stopped = fed._ask(fed.leads[0], StopNode(1.0), NodeStopped, 20)
    results = driver.wait_for(ids, timeout=10)

    assert stopped.unpushed == 0
    kinds = {r.workload_id: (r.error.kind if r.error else "ok") for r in results.values()}
    assert kinds == {"stuck": ErrorKind.NODE_SHUTTING_DOWN, "quick": "ok"}
    wait_until(lambda: not any(alive(p) for p in pids), 5.0)


def test_exception_in_the_embedding_program_leaves_no_process() -> None:
    with (
        pytest.raises(RuntimeError, match="user code failed"),
        run_node(app="tests.apps:Faulty", long_poll=True, system=SystemConfig()) as fed,
    ):
        fed.driver().submit([TaskIns.create("stuck", "hang")])
        wait_until(lambda: fed.status().handler_pids, 10.0)
        session = fed.handle.session_id
        assert len(session_processes(session)) >= 5
        raise RuntimeError("user code failed")
    assert session_processes(session) == []


def test_pickle_of_messages_never_carries_the_content_cache() -> None:
    task = TaskIns.create(1, {"big": "x" * 1000})
    assert task.content["big"] == "x" * 1000
    again = pickle.loads(pickle.dumps(task))
    assert "_content" not in again.__dict__ and again.content == task.content


def test_short_soak_answers_every_task_once_with_the_right_kind() -> None:
    from flower_actors.soak import SoakSpec, run_soak, verdict

    spec = SoakSpec(tasks=1200, workloads=40, raise_rate=0.02, exit_rate=0.01, hang_rate=0.01, deadline_s=0.5, seed=5)
    report = run_soak(spec)

    assert verdict(report, max_growth_kb=16384) is None, report
    assert report["answered_once"] == 1200 and report["wrong_kind"] == 0 and report["processes_left"] == 0
    assert report["kinds"].get("DeadlineExceeded", 0) == report["planned"].get("hang", 0) > 0
    assert report["kinds"].get("WorkloadClientDied", 0) == report["planned"].get("exit", 0) > 0


def test_results_finished_before_a_hang_are_never_lost(node: Node) -> None:
    # Thespian sends only between handler calls: a result still queued in a process whose next handler
    # hangs would die with it. The WorkloadClient writes such results to its spill file before it starts
    # the next task, and the LeadClient sends them on when it kills the process.
    fed = node(app="tests.apps:Faulty", long_poll=True, task_deadline_s=0.4)
    plan = ["ok", "ok", "ok", "hang", "ok"]
    tasks = [TaskIns.create(w, action) for w in range(6) for action in plan]

    results = fed.driver().run(tasks, timeout=60)

    kinds = [r.error.kind if r.error else "ok" for r in results]
    assert kinds == ["ok", "ok", "ok", ErrorKind.DEADLINE_EXCEEDED, "ok"] * 6


def test_results_finished_before_a_crash_arrive_and_unstarted_tasks_run_on(node: Node) -> None:
    # Short tasks run back to back in one slice, so the first two results are still inside the
    # process when the third task kills it: they come back from its spill file, and the two tasks
    # it had received but not started run in a fresh process.
    fed = node(app="tests.apps:Faulty", long_poll=True)
    plan = ["ok", "ok", "exit", "ok", "ok"]
    tasks = [TaskIns.create(w, action) for w in range(6) for action in plan]

    results = fed.driver().run(tasks, timeout=60)

    kinds = [r.error.kind if r.error else "ok" for r in results]
    assert kinds == ["ok", "ok", ErrorKind.WORKLOAD_CLIENT_DIED, "ok", "ok"] * 6
    for w in range(6):
        before, after = results[5 * w].content["pid"], results[5 * w + 3].content["pid"]
        assert results[5 * w + 1].content["pid"] == before and results[5 * w + 4].content["pid"] == after
        assert before != after


def test_processes_that_crash_at_once_are_all_answered_and_the_node_stops_without_waiting_for_them() -> None:
    # A new process runs its first task as soon as it is forked: one that crashes then may end before the
    # Spawner heard it connect, and Thespian gives no exit notice for it. Each death is still found (by the
    # pid the Spawner reports), and the Spawner does not wait for a ghost child when the node stops.
    config = NodeConfig(app="tests.apps:Faulty", long_poll=True, warm_pool=0)
    with run_node(config, system=SystemConfig()) as node:
        tasks = [TaskIns.create(w, action) for w in range(12) for action in ("exit", "ok")]
        results = node.driver().run(tasks, timeout=60)
        kinds = [r.error.kind if r.error else "ok" for r in results]
        assert kinds == [ErrorKind.WORKLOAD_CLIENT_DIED, "ok"] * 12
        status = node.status()
        assert status.deaths == 12
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 4.0, "a node stops at once when no task is running"


def test_spill_file_round_trip_skips_a_torn_record(tmp_path: Path) -> None:
    from flower_actors.spill import SpillWriter, read_spill

    answers = [TaskRes.answer(TaskIns.create(1, i), payload=dump_content(i)) for i in range(3)]
    writer = SpillWriter(str(tmp_path / "7"))
    writer.write(answers[:1])
    writer.clear()
    writer.write(answers[1:2])
    junk = pickle.dumps(({"not": "a result"},))
    with open(tmp_path / "7", "ab") as f:
        f.write(len(junk).to_bytes(4, "little") + junk)  # a record that is not results: skipped, said so
    answers[2].content  # noqa: B018  # a result whose content was read (and cached) is written without the cache
    writer.write(answers[2:])
    with open(tmp_path / "7", "ab") as f:
        f.write(b"\x40\x00\x00\x00torn")  # a record cut short by the process's death

    recovered = read_spill(str(tmp_path / "7"))

    assert recovered == answers[1:] and [r.ins_id for r in recovered] == [a.ins_id for a in answers[1:]]
    assert [r.content for r in recovered] == [1, 2]
    assert not (tmp_path / "7").exists() and read_spill(str(tmp_path / "7")) == []


def test_spill_directory_is_removed_with_the_node_and_after_a_kill() -> None:
    import glob
    import os
    import tempfile

    from flower_actors.spill import make_spill_dir

    def spill_dirs(pid: int) -> list[str]:
        return [
            p
            for parent in ("/dev/shm", tempfile.gettempdir())
            for p in glob.glob(f"{parent}/flower-actors-spill-{pid}-*")
        ]

    with run_node(NodeConfig(app=AppSpec("tests.apps:Recorder")), system=SystemConfig()) as fed:
        lead_pid = fed.started[0].pid
        fed.driver().run([TaskIns.create(1, "x")], timeout=30)
        assert len(spill_dirs(lead_pid)) == 1
    assert spill_dirs(lead_pid) == []

    mine = make_spill_dir()
    assert mine is not None
    stale = os.path.join(os.path.dirname(mine), "flower-actors-spill-999999999-left")  # no such pid
    os.makedirs(stale)
    fresh = make_spill_dir()  # the next LeadClient on the host removes what a killed one left
    assert fresh is not None and not os.path.exists(stale)
    for path in spill_dirs(os.getpid()):
        os.rmdir(path)


def test_actors_die_with_a_creator_that_is_killed(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from tests.proctools import REPO, marked_env, marked_processes

    script = tmp_path / "creator.py"
    script.write_text(
        "import sys, time\n"
        "from flower_actors import run_node, TaskIns\n"
        "with run_node(app='tests.apps:Faulty', long_poll=True) as node:\n"
        "    node.driver().submit([TaskIns.create('w', 'hang')])\n"
        "    print(node.handle.session_id, flush=True)\n"
        "    time.sleep(600)\n"
    )
    env = marked_env()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        session = int(proc.stdout.readline())
        wait_until(lambda: len(session_processes(session)) >= 5, 10.0)
        proc.send_signal(signal.SIGKILL)  # no finally, no shutdown: only the watchdog can clean up
        proc.wait(10)
        wait_until(lambda: not session_processes(session), 10.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert marked_processes(env) == []
