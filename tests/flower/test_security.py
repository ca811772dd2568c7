"""TLS and SuperNode authentication against a real SuperLink (``--ssl-*``, ``--enable-supernode-auth``).

Throwaway certificates and keys (``flower_actors.flower.certs``); the node is
the ``flower-actors-supernode`` command, as a site runs it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flower_actors.flower.certs import NodeKey, make_ca, make_node_key, make_server_certificate
from flower_actors.flower.harness import FlwrCli, SuperLinkProcess, SuperNodeProcess
from flower_actors.runtime.proc import process_alive

from .conftest import Probe, wait_for

NODE_UNAVAILABLE = 5  # flwr ErrorCode.NODE_UNAVAILABLE


@dataclass
class Site:
    superlink: SuperLinkProcess
    cli: FlwrCli
    ca: Path
    other_ca: Path
    registered: NodeKey
    unregistered: NodeKey
    folder: Path

    def node(self, name: str, *flags: str, key: NodeKey | None = None, ca: Path | None = None) -> SuperNodeProcess:
        extra = ["--heartbeat-interval", "10", "--warm-pool", "1", "--max-retries", "1", *flags]
        if key is not None:
            extra += ["--auth-supernode-private-key", str(key.private_key)]
        insecure = "--insecure" in flags
        if not insecure:
            extra += ["--root-certificates", str(ca or self.ca)]
        else:
            extra.remove("--insecure")
        return SuperNodeProcess(self.folder / name, self.superlink.address, extra=extra, insecure=insecure)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A SuperLink over TLS with SuperNode authentication; one node key registered by the operator."""
    folder = tmp_path_factory.mktemp("tls")
    ca = make_ca(folder / "pki")
    other = make_ca(folder / "pki", "other-ca")
    server = make_server_certificate(ca, folder / "pki", ["127.0.0.1"])
    superlink = SuperLinkProcess(folder / "superlink", tls=server, node_auth=True).start()
    try:
        cli = FlwrCli(folder, superlink.address, root_certificates=ca.certificate)
        registered = make_node_key(folder / "keys", "registered")
        cli.register(registered.public_key)
        unregistered = make_node_key(folder / "keys", "unregistered")
        yield Site(superlink, cli, ca.certificate, other.certificate, registered, unregistered, folder)
    finally:
        assert superlink.stop() == []


def refusal(node: SuperNodeProcess) -> str:
    """Start ``node``, expect exit status 1; its log."""
    try:
        node.start()
        assert node.wait(60) == 1, node.log_text()[-2000:]
        return node.log_text()
    finally:
        assert node.stop() == []


def test_a_run_completes_over_tls_and_a_killed_node_comes_back_at_once_with_its_key(site: Site) -> None:
    node = site.node("node", key=site.registered)
    try:
        node.start()
        node.wait_joined()
        assert "(TLS)" in node.log_text()
        probe = Probe(site.cli, site.folder)
        record = probe.finish(probe.launch(rounds=2, **{"payload-kb": 64}))
        assert record["status"] == "finished:completed", record
        assert all(r["payload_ok"] for e in record["rounds"] for r in e["replies"])

        run_id = probe.launch(rounds=3, **{"work-s": 4.0})
        wait_for(lambda: f"run {run_id}" in node.log_text(), 60, "the run's first message to reach the node")
        pids = node.processes()
        node.signal(signal.SIGKILL)  # the node itself, not its children: they must not outlive it
        wait_for(lambda: not [p for p in pids if process_alive(p)], 10, "every process of the killed node to end")
        node.stop()
        node.start()  # same key, while the SuperLink still counts the old session as online
        node.wait_joined(30)
        assert "still counts as online" in node.log_text(latest=True)
        record = probe.finish(run_id)
        assert record["status"] == "finished:completed", record
        first, *rest = [entry["replies"][0] for entry in record["rounds"]]
        assert first.get("error_code") == NODE_UNAVAILABLE, first  # the message the killed node held
        assert [r.get("count") for r in rest] == [1, 2], rest  # the restarted node serves the same node id
    finally:
        assert node.stop() == []


def test_a_node_that_does_not_trust_the_certificate_is_refused(site: Site) -> None:
    log = refusal(site.node("wrong-ca", key=site.registered, ca=site.other_ca))
    assert "no TLS session" in log and "not signed by --root-certificates" in log


def test_an_unregistered_key_is_refused(site: Site) -> None:
    log = refusal(site.node("unregistered", key=site.unregistered))
    assert "refused this node" in log and "flwr supernode register" in log


def test_a_node_without_a_key_is_told_to_use_one(site: Site) -> None:
    log = refusal(site.node("no-key"))
    assert "must be registered" in log and "--auth-supernode-private-key" in log


def test_insecure_against_a_tls_superlink_is_refused(site: Site) -> None:
    log = refusal(site.node("insecure", "--insecure"))
    assert "speaks TLS; drop --insecure" in log
