"""Faults while runs go on, against a real SuperLink: its restart with and without a database, a hung
ClientApp, a SuperLink that stops answering. (A killed node: ``test_security``; a cut host: ``test_hosts``.)"""

from __future__ import annotations

import signal
import time
from contextlib import AbstractContextManager
from pathlib import Path

from flower_actors.flower.control import LinkOptions
from flower_actors.flower.harness import FlwrCli, SuperLinkProcess
from flower_actors.flower.node import FlowerNode, FlowerNodeConfig, run_flower_node

from .conftest import Probe, wait_for

CRASHED = 8  # flwr ErrorCode.CLIENT_APP_CRASHED


def counts(record: dict) -> list[int | None]:
    return [entry["replies"][0].get("count") for entry in record["rounds"]]


def start_node(superlink: SuperLinkProcess, home: Path, **link: object) -> AbstractContextManager[FlowerNode]:
    options = LinkOptions(superlink=superlink.address, insecure=True, flwr_home=str(home), **link)  # type: ignore[arg-type]
    return run_flower_node(FlowerNodeConfig(link=options, warm_pool=1))


def test_a_superlink_restarted_with_its_database_keeps_the_node(tmp_path: Path) -> None:
    superlink = SuperLinkProcess(tmp_path / "superlink", database=tmp_path / "state.db").start()
    try:
        cli = FlwrCli(tmp_path, superlink.address)
        with start_node(superlink, tmp_path / "home", heartbeat_interval=10.0) as node:
            probe = Probe(cli, tmp_path)
            assert probe.finish(probe.launch(rounds=1))["status"] == "finished:completed"
            first = node.node_id
            superlink.restart()
            record = probe.finish(probe.launch(rounds=2))
            assert record["status"] == "finished:completed", record
            assert counts(record) == [1, 2]
            link = node.link_status()
            assert link.node_id == first and link.joins == 1  # the same identity, never joined again
    finally:
        assert superlink.stop() == []


def test_a_clientapp_that_hangs_past_the_deadline_gets_an_error_reply_and_the_run_goes_on(
    superlink: SuperLinkProcess, cli: FlwrCli, tmp_path: Path
) -> None:
    with start_node(superlink, tmp_path / "home", heartbeat_interval=10.0, task_deadline_s=4.0) as node:
        probe = Probe(cli, tmp_path)
        record = probe.finish(probe.launch(rounds=4, **{"hang-round": 2, "hang-round-s": 120.0}))
        assert record["status"] == "finished:completed", record
        got = [entry["replies"][0] for entry in record["rounds"]]
        assert got[1]["error_code"] == CRASHED and "DeadlineExceeded" in got[1]["error_reason"], got[1]
        assert got[1:] and got[2]["pid"] != got[0]["pid"]  # the hung process was killed
        assert counts(record) == [1, None, 2, 3]  # a fresh process went on from the state round 1 left
        assert node.status().deaths >= 1 and node.link_status().pending == 0


def test_a_superlink_that_stops_answering_for_20_s_loses_no_reply_and_duplicates_none(tmp_path: Path) -> None:
    superlink = SuperLinkProcess(tmp_path / "superlink").start()
    try:
        cli = FlwrCli(tmp_path, superlink.address)
        with start_node(superlink, tmp_path / "home", heartbeat_interval=30.0) as node:
            probe = Probe(cli, tmp_path)
            run_id = probe.launch(rounds=4, **{"work-s": 2.0})
            wait_for(lambda: node.link_status().pulled >= 1, 60, "the run's first message")
            superlink.signal(signal.SIGSTOP)  # it accepts connections and answers nothing
            try:
                time.sleep(20)
            finally:
                superlink.signal(signal.SIGCONT)
            record = probe.finish(run_id)
            assert record["status"] == "finished:completed", record
            assert counts(record) == [1, 2, 3, 4]
            link = node.link_status()
            assert link.pushed == 4 and link.refused == 0 and link.pending == 0
    finally:
        assert superlink.stop() == []
