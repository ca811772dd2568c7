"""Several hosts, built from network namespaces: a SuperLink host and three node hosts, over TLS with node keys.

Each host has its own network, pid and mount namespace (``hosts.py``); each
node binds only loopback inside its host and reaches the SuperLink at the
SuperLink host's address. Hosts are power-cut (every process SIGKILLed at
once) and partitioned while runs go on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from flower_actors.flower.certs import NodeKey, make_ca, make_node_key, make_server_certificate
from flower_actors.flower.harness import FlwrCli, SuperLinkProcess, SuperNodeProcess

from .conftest import Probe, wait_for
from .hosts import NetworkHosts, netns_unavailable

NODE_UNAVAILABLE = 5  # flwr ErrorCode.NODE_UNAVAILABLE
HEARTBEAT_S = 10.0  # the shortest a SuperLink accepts
NODES = (1, 2, 3)  # host 0 is the SuperLink's

why = netns_unavailable()
pytestmark = pytest.mark.skipif(why is not None, reason=f"no network namespaces here: {why}")


@dataclass
class Cluster:
    hosts: NetworkHosts
    superlink: SuperLinkProcess
    probe: Probe
    nodes: dict[int, SuperNodeProcess]
    keys: dict[int, NodeKey]

    def start(self, host: int) -> SuperNodeProcess:
        node = self.nodes[host]
        node.start()
        node.wait_joined(60)
        return node

    def replies_of(self, record: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
        """Each node's replies, round by round, keyed by node id."""
        by_node: dict[int, list[dict[str, Any]]] = {}
        for entry in record["rounds"]:
            for reply in entry["replies"]:
                by_node.setdefault(int(reply["node"]), []).append(reply)
        return by_node


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("hosts")
    with NetworkHosts(4) as hosts:
        ca = make_ca(folder / "pki")
        server = make_server_certificate(ca, folder / "pki", [hosts.address(0)])
        superlink = SuperLinkProcess(
            folder / "superlink", 9092, host=hosts.address(0), tls=server, node_auth=True, prefix=hosts.prefix(0)
        )
        nodes: dict[int, SuperNodeProcess] = {}
        try:
            superlink.start()
            cli = FlwrCli(
                folder,
                superlink.address,
                root_certificates=ca.certificate,
                prefix=["ip", "netns", "exec", hosts.names[0]],
            )
            keys = {i: make_node_key(folder / "keys", f"host{i}") for i in NODES}
            for key in keys.values():
                cli.register(key.public_key)
            for i in NODES:
                flags = ["--root-certificates", str(ca.certificate), "--auth-supernode-private-key"]
                flags += [str(keys[i].private_key), "--heartbeat-interval", str(HEARTBEAT_S), "--warm-pool", "1"]
                nodes[i] = SuperNodeProcess(
                    folder / f"host{i}", superlink.address, extra=flags, insecure=False, prefix=hosts.prefix(i)
                )
            cluster = Cluster(hosts, superlink, Probe(cli, folder), nodes, keys)
            for i in NODES:
                cluster.start(i)
            yield cluster
        finally:
            for node in nodes.values():
                node.stop()
            superlink.stop()


def test_runs_need_all_three_hosts_and_every_node_listens_on_its_own_loopback(cluster: Cluster) -> None:
    record = cluster.probe.finish(cluster.probe.launch(rounds=2, **{"min-nodes": 3, "payload-kb": 256}))
    assert record["status"] == "finished:completed", record
    by_node = cluster.replies_of(record)
    assert len(by_node) == 3
    for replies in by_node.values():
        assert [r["count"] for r in replies] == [1, 2] and all(r["payload_ok"] for r in replies)
    for i in NODES:
        listening = cluster.hosts.listening(i)
        assert listening and all(a.startswith("127.0.0.1:") for a in listening), listening
    assert all(a.startswith(cluster.hosts.address(0) + ":") for a in cluster.hosts.listening(0))


def test_a_power_cut_host_is_node_unavailable_the_others_go_on_and_it_comes_back(cluster: Cluster) -> None:
    probe = cluster.probe
    run_id = probe.launch(rounds=3, **{"min-nodes": 3, "work-s": 3.0})
    node3 = cluster.nodes[3]
    wait_for(lambda: f"run {run_id}" in node3.log_text(latest=True), 60, "the run's first message on host 3")
    cut_at = time.time()
    cluster.hosts.power_cut(3)
    record = probe.finish(run_id)
    assert record["status"] == "finished:completed", record
    first = record["rounds"][0]
    lost = [r for r in first["replies"] if r.get("error_code") == NODE_UNAVAILABLE]
    assert len(lost) == 1, first["replies"]
    assert first["done_at"] - cut_at < 2 * HEARTBEAT_S + 10  # the SuperLink's patience: two heartbeat intervals
    served = [r for entry in record["rounds"] for r in entry["replies"] if "count" in r]
    assert len(served) == 6 and lost[0]["node"] not in {r["node"] for r in served}  # the other two, every round

    node3.stop()
    cluster.start(3)  # the host is back: the node activates again and serves the next run
    record = probe.finish(probe.launch(rounds=2, **{"min-nodes": 3}))
    assert record["status"] == "finished:completed", record
    assert all("count" in r for entry in record["rounds"] for r in entry["replies"])
    assert len(cluster.replies_of(record)) == 3


def test_a_node_restarted_at_once_after_a_power_cut_ends_its_stale_session_and_answers_what_it_held(
    cluster: Cluster,
) -> None:
    probe = cluster.probe
    run_id = probe.launch(rounds=3, **{"min-nodes": 3, "work-s": 3.0})
    node2 = cluster.nodes[2]
    wait_for(lambda: f"run {run_id}" in node2.log_text(latest=True), 60, "the run's first message on host 2")
    cluster.hosts.power_cut(2)
    node2.stop()
    back_at = time.time()
    cluster.start(2)  # within the heartbeat window: the SuperLink still counts the old session as online
    assert time.time() - back_at < 30
    assert "still counts as online" in node2.log_text(latest=True)
    record = probe.finish(run_id)
    assert record["status"] == "finished:completed", record
    replies = cluster.replies_of(record)
    lost = [node for node, got in replies.items() if got[0].get("error_code") == NODE_UNAVAILABLE]
    assert len(lost) == 1  # the message host 2 held when it died, answered by its next life
    assert record["rounds"][0]["done_at"] - back_at < 2 * HEARTBEAT_S  # not left for the SuperLink to time out
    assert [r.get("count") for r in replies[lost[0]][1:]] == [1, 2]  # then it serves the run again
    for node, got in replies.items():
        if node != lost[0]:
            assert [r["count"] for r in got] == [1, 2, 3]


def test_a_partition_that_heals_within_the_heartbeat_window_loses_no_reply(cluster: Cluster) -> None:
    probe = cluster.probe
    run_id = probe.launch(rounds=3, **{"min-nodes": 3, "work-s": 2.0})
    node1 = cluster.nodes[1]
    wait_for(lambda: f"run {run_id}" in node1.log_text(latest=True), 60, "the run's first message on host 1")
    cluster.hosts.partition(1)
    time.sleep(HEARTBEAT_S * 0.6)  # its reply is ready meanwhile and cannot go out
    cluster.hosts.heal(1)
    record = probe.finish(run_id)
    assert record["status"] == "finished:completed", record
    replies = cluster.replies_of(record)
    assert len(replies) == 3
    for got in replies.values():
        assert [r.get("count") for r in got] == [1, 2, 3], got  # no reply lost, none twice


def test_nothing_is_left_on_any_host_after_the_nodes_stop(cluster: Cluster) -> None:
    for i in NODES:
        cluster.nodes[i].stop()
        assert cluster.hosts.pids(i) == [], f"host {i} still runs processes"
