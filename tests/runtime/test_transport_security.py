"""No open door: every socket on loopback, and unauthenticated frames never unpickled."""

from __future__ import annotations

import builtins
import pickle
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flower_actors import LocalFederation, TaskIns
from tests.netutil import listening_addresses

Node = Callable[..., LocalFederation]


def test_every_socket_listens_on_loopback_only(node: Node) -> None:
    fed = node(app="tests.apps:Recorder", long_poll=True)
    fed.driver().run([TaskIns.create(w, "x") for w in range(3)], timeout=30)  # WorkloadClients exist

    addresses = listening_addresses(fed.handle.processes)

    assert len(addresses) >= 6, addresses  # admin, logger, server, LeadClient, Sender, 3 WorkloadClients
    assert {host for host, _ in addresses} == {"127.0.0.1"}, addresses


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _send_raw(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"%d>" % len(payload) + payload)
        s.settimeout(1.0)
        try:
            s.recv(100)
        except OSError:
            pass


def test_crafted_pickles_run_nothing_and_the_system_keeps_working(node: Node, tmp_path: Path) -> None:
    # Prepare
    fed = node(app="tests.apps:Recorder", long_poll=True)
    lead_port = fed.leads[0].addressDetails.sockname[1]
    server_port = fed.server.addressDetails.sockname[1]
    markers = [tmp_path / f"pwned-{i}" for i in range(4)]

    # Execute: a code-running pickle to the admin and to actor ports, bare and with a forged tag
    _send_raw(fed.handle.admin_port, pickle.dumps(_Exploit(markers[0])))
    _send_raw(lead_port, pickle.dumps(_Exploit(markers[1])))
    _send_raw(server_port, b"\0" * 32 + pickle.dumps(_Exploit(markers[2])))
    _send_raw(fed.handle.admin_port, b"\0" * 32 + pickle.dumps(_Exploit(markers[3])))
    time.sleep(0.5)

    # Assert
    assert not any(m.exists() for m in markers)
    result = fed.driver().run([TaskIns.create(1, "still alive")], timeout=30)[0]
    assert result.ok and result.content["history"] == ["still alive"]
    assert fed.status().workloads_live == 1
