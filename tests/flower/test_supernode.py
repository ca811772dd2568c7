"""Our node against a real Flower 1.42 SuperLink, with real runs launched by ``flwr run`` (the probe app)."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

from flower_actors.flower.harness import FlwrCli, SuperLinkProcess, SuperNodeProcess
from flower_actors.flower.node import FlowerNode, run_flower_node

from ..netutil import off_loopback, socket_ends
from .conftest import Probe, node_config, wait_for

RAISED = 2  # flwr ErrorCode.CLIENT_APP_RAISED_EXCEPTION
CRASHED = 8  # flwr ErrorCode.CLIENT_APP_CRASHED


def replies(record: dict) -> list[dict]:
    """The one reply of each round, in order."""
    return [entry["replies"][0] for entry in record["rounds"]]


def test_two_runs_are_served_at_once_each_in_its_own_resident_process(flower_node: FlowerNode, probe: Probe) -> None:
    config = {"rounds": 3, "work-s": 1.5, "payload-kb": 2048}  # 2 MiB each way per message
    first, second = probe.launch(**config), probe.launch(**config)
    records = {run_id: probe.finish(run_id) for run_id in (first, second)}
    pids = {}
    for run_id, record in records.items():
        assert record["status"] == "finished:completed", record
        assert record["failures"] == []
        got = replies(record)
        assert [r["count"] for r in got] == [1, 2, 3]  # Context.state carried over, message after message
        assert {r["state_run_id"] for r in got} == {run_id}  # never another run's state
        assert all(r["payload_ok"] for r in got)
        assert len({r["pid"] for r in got}) == 1 and len({r["loaded_at"] for r in got}) == 1  # loaded once
        pids[run_id] = got[0]["pid"]
    assert pids[first] != pids[second]  # runs never share a process
    spans = {run_id: [(r["began"], r["ended"]) for r in replies(rec)] for run_id, rec in records.items()}
    overlapping = [
        (a, b) for a in spans[first] for b in spans[second] if a[0] < b[1] and b[0] < a[1]
    ]  # served at the same time: a message of one run ran while one of the other did
    assert overlapping, spans
    link = flower_node.link_status()
    assert link.pending == 0 and link.pushed >= 6 and link.refused == 0
    assert flower_node.status().deaths == 0


def test_a_raise_gets_an_error_reply_and_a_death_a_fresh_process(flower_node: FlowerNode, probe: Probe) -> None:
    run_id = probe.launch(rounds=5, **{"raise-round": 2, "die-round": 4})
    record = probe.finish(run_id)
    got = replies(record)
    assert record["failures"] == [], record["failures"]
    assert got[0]["count"] == 1
    assert got[1]["error_code"] == RAISED and "ZeroDivisionError" in got[1]["error_reason"]
    assert "probe raised in round 2" in got[1]["error_reason"]
    assert got[2]["count"] == 3 and got[2]["pid"] == got[0]["pid"]  # the raise kept the process and its state
    assert got[3]["error_code"] == CRASHED and "WorkloadClientDied" in got[3]["error_reason"]
    assert got[4]["pid"] != got[0]["pid"]  # the run goes on in a fresh WorkloadClient
    assert got[4]["count"] == 4 and got[4]["state_run_id"] == run_id  # from the state round 3 left
    assert got[4]["rounds"] == [1, 2, 3, 5] and got[4]["loaded_at"] != got[0]["loaded_at"]
    assert flower_node.status().deaths == 1
    assert flower_node.link_status().pending == 0


def test_context_state_keeps_counting_across_os_exit(flower_node: FlowerNode, probe: Probe) -> None:
    run_id = probe.launch(rounds=6, **{"exit-round": 3, "payload-kb": 16})
    got = replies(probe.finish(run_id))
    assert got[2]["error_code"] == CRASHED
    assert [r.get("count") for r in got] == [1, 2, None, 3, 4, 5]  # the count the dead process made is gone
    assert got[5]["rounds"] == [1, 2, 4, 5, 6]
    assert len({got[0]["pid"], got[3]["pid"]}) == 2 and got[3]["pid"] == got[5]["pid"]


def test_flwr_stop_stops_the_runs_workload_client(flower_node: FlowerNode, probe: Probe, cli: FlwrCli) -> None:
    run_id = probe.launch(rounds=40, **{"work-s": 0.5})
    wait_for(lambda: run_id in flower_node.link_status().runs, 60, "the run's first message")
    wait_for(lambda: flower_node.status().workloads_live == 1, 30, "the run's WorkloadClient")
    cli.stop(run_id)
    wait_for(lambda: flower_node.status().workloads_live == 0, 30, "the stopped run's WorkloadClient to stop")
    assert cli.info(run_id)["status"].startswith("finished:stopped")
    assert flower_node.status().workloads_stopped >= 1
    assert flower_node.link_status().pending == 0


def test_a_restarted_superlink_is_joined_again_and_served(tmp_path: Path) -> None:
    superlink = SuperLinkProcess(tmp_path / "superlink").start()
    try:
        cli = FlwrCli(tmp_path, superlink.address)
        with run_flower_node(node_config(superlink, tmp_path / "node-home")) as node:
            first = node.node_id
            superlink.restart()  # in-memory state: the node is unknown now (401)
            probe = Probe(cli, tmp_path)
            record = probe.finish(probe.launch(rounds=2))
            assert record["status"] == "finished:completed", record
            assert [r["count"] for r in replies(record)] == [1, 2]
            link = node.link_status()
            assert link.joins >= 2 and link.node_id != first
    finally:
        assert superlink.stop() == []


def test_the_command_serves_on_loopback_only_and_sigterm_leaves_no_process(
    superlink: SuperLinkProcess, cli: FlwrCli, tmp_path: Path
) -> None:
    timeline = tmp_path / "served.json"
    extra = ["--warm-pool", "1", "--heartbeat-interval", "10", "--timeline", str(timeline)]
    node = SuperNodeProcess(tmp_path, superlink.address, extra=extra)
    try:
        node.start()
        node.wait_joined()
        probe = Probe(cli, tmp_path)
        run_id = probe.launch(rounds=2, **{"work-s": 1.0})
        wait_for(lambda: len(node.processes()) >= 5, 30, "the node's processes")
        wait_for(lambda: "run " + str(run_id) in node.log_text(), 60, "the run to reach the node")
        ends = socket_ends(node.processes() + superlink.processes())
        assert ends and off_loopback(ends) == []
        checked = 0
        for pid in [*superlink.processes(), node.pid]:  # every flwr process started here runs quiet
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue  # ended meanwhile
            checked += 1
            assert b"FLWR_TELEMETRY_ENABLED=0" in environ and b"FLWR_DISABLE_UPDATE_CHECK=1" in environ
            assert not [v for v in environ if v.split(b"=")[0].lower().endswith(b"_proxy")]
        assert checked >= 3  # the SuperLink, its SuperExec, the ServerApp of the run (and our node)
        record = probe.finish(run_id)
        assert record["status"] == "finished:completed"
        pids = node.processes()
        node.signal(signal.SIGTERM)
        assert node.wait(60) == 0, node.log_text()[-3000:]
        wait_for(lambda: not [p for p in pids if Path(f"/proc/{p}").exists()], 10, "every node process to end")
        assert "terminated: the node stopped" in node.log_text()
        assert "stopping: waiting up to 10 s for 0 in-flight message(s), then leaving the SuperLink" in node.log_text()
        events = json.loads(timeline.read_text())["traceEvents"]  # the messages it served, on the run's lane
        lanes = {e["args"]["name"] for e in events if e["name"] == "thread_name"} - {"pulls"}
        running = [e for e in events if e["name"] == "running"]
        assert len(lanes) == 1 and str(run_id) in lanes.pop(), events[:5]
        assert len(running) >= 2 and all(e["dur"] >= 900_000 for e in running)  # 1 s of work each, in µs
    finally:
        assert node.stop() == []


def test_a_first_ctrl_c_says_what_the_stop_waits_for_and_a_second_stops_at_once(
    superlink: SuperLinkProcess, cli: FlwrCli, tmp_path: Path
) -> None:
    node = SuperNodeProcess(tmp_path, superlink.address, extra=["--stop-timeout", "30"])
    run_id = None
    try:
        node.start()
        node.wait_joined()
        probe = Probe(cli, tmp_path)
        run_id = probe.launch(rounds=1, **{"work-s": 60.0})
        wait_for(lambda: len(node.processes()) >= 4, 60, "the run's WorkloadClient")
        time.sleep(3.0)  # the first message is being handled (60 s of work)
        pids = node.processes()
        node.signal(signal.SIGINT)
        said = wait_for(
            lambda: re.search(
                r"stopping: waiting up to 30 s for (\d+) in-flight .*Ctrl-C again to stop now", node.log_text()
            ),
            10,
            "the first Ctrl-C's message",
        )
        assert int(said.group(1)) >= 1, node.log_text()[-3000:]
        start = time.monotonic()
        node.signal(signal.SIGINT)
        assert node.wait(20) == 130, node.log_text()[-3000:]
        assert time.monotonic() - start < 5.0, "the second Ctrl-C does not wait for the 30 s drain"
        wait_for(lambda: not [p for p in pids if Path(f"/proc/{p}").exists()], 10, "every node process to end")
        assert "stopping now: killing every process of the node" in node.log_text()
    finally:
        assert node.stop() == []
        if run_id is not None:
            cli.stop(run_id)


def test_an_unreachable_superlink_is_a_clear_error(tmp_path: Path) -> None:
    from flower_actors.flower.harness import free_port

    node = SuperNodeProcess(tmp_path, f"127.0.0.1:{free_port()}", extra=["--max-retries", "1"])
    try:
        node.start()
        assert node.wait(60) == 1
        assert "cannot reach the SuperLink" in node.log_text()
    finally:
        node.stop()
