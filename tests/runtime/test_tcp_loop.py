"""The TCP loop that visits only the idle connections that need it: its table, its wait, and a real system on it."""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from thespian.actors import ActorAddress

from flower_actors import SystemConfig, secure_thespian, start_actor_system
from flower_actors.runtime import idle_table, tcp_loop
from flower_actors.runtime.actor_base import SafeActor


class Idle:
    """Stands in for Thespian's ``IdleSocket``: the table reads only ``.socket``."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(4)]
    yield made
    for a, b in made:
        a.close()
        b.close()


def test_the_loop_is_installed_on_the_pinned_thespian() -> None:
    secure_thespian()
    assert tcp_loop.installed()


def test_a_loop_it_was_not_adapted_from_is_left_alone() -> None:
    from thespian.system.transport import TCPTransport as tcp

    ours = tcp.TCPTransport._runWithExpiry

    def another_loop(self: Any, incomingHandler: Any) -> None:
        """Not Thespian 4.0.1's."""

    tcp.TCPTransport._runWithExpiry = another_loop
    try:
        assert not tcp_loop.install()
        assert tcp.TCPTransport._runWithExpiry is another_loop
    finally:
        tcp.TCPTransport._runWithExpiry = ours


def test_the_table_registers_every_change_and_lists_what_it_removed(pairs: list[Any]) -> None:
    (a, _), (b, b_peer), (c, _), (d, d_peer) = pairs
    one, two, three, four = Idle(a), Idle(b), Idle(c), Idle(d)
    table = idle_table.IdleTable({"one": one})
    table["two"] = two
    table.setdefault("three", three)
    assert table.by_fd == {a.fileno(): one, b.fileno(): two, c.fileno(): three}
    table["two"] = four  # replaced: the old one is unregistered and listed
    del table["one"]
    assert table.pop("three") is three and table.pop("absent", None) is None
    assert table.removed == [two, one, three]
    assert table.by_fd == {d.fileno(): four} and dict(table) == {"two": four}
    d_peer.send(b"x")
    b_peer.send(b"x")  # no longer in the table: not waited on
    assert idle_table.wait(table, [], [], 1.0) == ([d.fileno()], [])
    table.clear()
    assert not table and not table.by_fd


def test_a_wait_also_watches_the_passes_other_sockets_and_leaves_the_table_as_it_was(pairs: list[Any]) -> None:
    (a, a_peer), (b, _), (c, c_peer), _ = pairs
    table = idle_table.IdleTable({"a": Idle(a)})
    c_peer.send(b"x")
    readable, writable = idle_table.wait(table, [c.fileno()], [b.fileno(), a.fileno()], 1.0)
    assert readable == [c.fileno()] and sorted(writable) == sorted([a.fileno(), b.fileno()])
    a_peer.send(b"x")
    assert idle_table.wait(table, [], [], 1.0) == ([a.fileno()], []), "a is watched for reading only again"
    assert set(table.by_fd) == {a.fileno()}
    with pytest.raises(ValueError):
        idle_table.wait(table, [-1], [], 0.0)
    closed = socket.socket()
    fd = closed.fileno()
    closed.close()
    with pytest.raises(OSError) as raised:
        idle_table.wait(table, [fd], [], 0.0)
    assert raised.value.errno == errno.EBADF


def test_a_socket_closed_while_in_the_table_is_seen_at_the_next_resync(pairs: list[Any]) -> None:
    (a, _), (b, _), _, _ = pairs
    table = idle_table.IdleTable({"a": Idle(a), "b": Idle(b)})
    a.close()
    table.resync()
    assert table.closed_seen and set(table.by_fd) == {b.fileno()}
    poll = select.poll()
    poll.register(b.fileno(), select.POLLIN)
    assert not poll.poll(0)


class CountingPoller:
    """Stands in for the table's ``epoll`` object and counts the registration calls made on it."""

    def __init__(self, poller: Any) -> None:
        self.poller = poller
        self.calls = 0

    def register(self, fd: int, mask: int) -> None:
        self.calls += 1
        self.poller.register(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        self.calls += 1
        self.poller.modify(fd, mask)

    def unregister(self, fd: int) -> None:
        self.calls += 1
        self.poller.unregister(fd)

    def poll(self, timeout: float) -> Any:
        return self.poller.poll(timeout)

    def close(self) -> None:
        self.poller.close()


def test_a_socket_waited_on_stays_registered_until_a_wait_no_longer_wants_it(pairs: list[Any]) -> None:
    (a, a_peer), (b, _), _, _ = pairs
    table = idle_table.IdleTable()
    table.poller = counting = CountingPoller(table.poller)  # type: ignore[assignment]
    assert idle_table.wait(table, [a], [b], 0.0) == ([], [b.fileno()])
    assert counting.calls == 2 and table.kept == {a.fileno(): (a, select.EPOLLIN), b.fileno(): (b, select.EPOLLOUT)}
    a_peer.send(b"x")
    for _ in range(3):  # the same wait again: no registration call
        assert idle_table.wait(table, [a], [b], 0.0) == ([a.fileno()], [b.fileno()])
    assert counting.calls == 2
    assert idle_table.wait(table, [a, b], [], 0.0) == ([a.fileno()], []), "b now only for reading"
    assert counting.calls == 3
    assert idle_table.wait(table, [], [], 0.0) == ([], []), "wanted by no one: not reported"
    assert counting.calls == 5 and not table.kept


def test_a_connection_that_leaves_the_table_and_comes_back_keeps_its_registration(pairs: list[Any]) -> None:
    (a, a_peer), _, _, _ = pairs
    table = idle_table.IdleTable({"a": Idle(a)})
    table.poller = counting = CountingPoller(table.poller)  # type: ignore[assignment]
    del table["a"]  # it carries a message: the loop waits on it for the acknowledgement
    a_peer.send(b"x")
    assert idle_table.wait(table, [a], [], 0.0) == ([a.fileno()], [])
    table["a"] = Idle(a)  # acknowledged: idle again
    assert idle_table.wait(table, [], [], 0.0) == ([a.fileno()], [])
    assert counting.calls == 0 and not table.stale
    del table["a"]
    assert idle_table.wait(table, [], [], 0.0) == ([], []), "left and not waited on: unregistered"
    assert counting.calls == 1


def test_a_pass_waits_on_an_incoming_connection_by_its_socket_or_else_its_number(pairs: list[Any]) -> None:
    (a, _), _, _, _ = pairs
    number = a.fileno()
    assert tcp_loop._waitable(number, a) is a, "kept registered from pass to pass"
    assert tcp_loop._waitable(number, None) == number, "closed by Thespian: waited on (and failed) as before"
    a.close()
    assert tcp_loop._waitable(number, a) == number


def _socket_numbered(number: int) -> tuple[socket.socket, socket.socket]:
    """A connected pair whose first socket has descriptor ``number`` (free now)."""
    first, peer = socket.socketpair()
    if first.fileno() != number:
        os.dup2(first.fileno(), number)
        first.close()
        first = socket.socket(fileno=number)
    return first, peer


def test_a_kept_socket_closed_under_it_never_confuses_a_new_one_with_its_number(pairs: list[Any]) -> None:
    (a, a_peer), _, _, _ = pairs
    table = idle_table.IdleTable()
    assert idle_table.wait(table, [a], [], 0.0) == ([], [])
    number, first_poller = a.fileno(), table.poller
    a_peer.send(b"x")
    shared = os.dup(number)  # as a forked child would: the closed socket lives on, readable, in the epoll
    a.close()
    c, c_peer = _socket_numbered(number)
    try:
        assert idle_table.wait(table, [c], [], 0.0) == ([], []), "the old socket's data is not the new one's"
        assert table.poller is not first_poller and table.kept == {number: (c, select.EPOLLIN)}
        c_peer.send(b"x")
        assert idle_table.wait(table, [c], [], 0.0) == ([number], [])
        second_poller = table.poller
        c.close()  # closed while registered, and not waited on again: unregistering fails
        assert idle_table.wait(table, [], [], 0.0) == ([], []) and table.stale
        assert idle_table.wait(table, [], [], 0.0) == ([], [])
        assert not table.stale and table.poller is not second_poller, "made afresh"
    finally:
        os.close(shared)
        c.close()
        c_peer.close()


@dataclass(frozen=True)
class Pings:
    hub: ActorAddress
    count: int


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class GetHub:
    pass


@dataclass(frozen=True)
class Hub:
    pings: int
    table: str
    idle_connections: int


class HubActor(SafeActor):
    def __init__(self) -> None:
        super().__init__()
        self.pings = 0

    def receive_Ping(self, message: Ping, sender: ActorAddress) -> None:
        self.pings += 1

    def receive_GetHub(self, message: GetHub, sender: ActorAddress) -> None:
        table = self._myRef.transport._openSockets
        self.send(sender, Hub(self.pings, type(table).__name__, len(table)))


class SpokeActor(SafeActor):
    def receive_Pings(self, message: Pings, sender: ActorAddress) -> None:
        for _ in range(message.count):
            self.send(message.hub, Ping())


def test_many_peers_reach_a_hub_and_idle_connections_expire_and_reconnect() -> None:
    """20 processes each keep a connection to one hub; they expire when idle, and the next pings connect again."""
    from thespian.system.transport import TCPTransport as tcp

    original = tcp.MAX_IDLE_SOCKET_PERIOD
    tcp.MAX_IDLE_SOCKET_PERIOD = timedelta(seconds=1.5)  # the actor processes fork from this one: they inherit it
    handle = start_actor_system(SystemConfig())
    try:
        system = handle.system
        hub = system.createActor(HubActor)
        spokes = [system.createActor(SpokeActor) for _ in range(20)]

        def hub_after(pings: int) -> Hub:
            deadline = time.monotonic() + 20
            while True:
                state = system.ask(hub, GetHub(), 10)
                assert isinstance(state, Hub), state
                if state.pings >= pings or time.monotonic() > deadline:
                    return state
                time.sleep(0.05)

        for spoke in spokes:
            system.tell(spoke, Pings(hub, 10))
        first = hub_after(200)
        assert first.pings == 200 and first.table == "IdleTable"
        assert first.idle_connections >= 20, "each spoke's connection stays open while it is fresh"
        time.sleep(1.5 + tcp_loop.EXPIRY_SWEEP_S + 1.0)
        rested = hub_after(200)
        assert rested.idle_connections <= 2, f"{rested.idle_connections} idle connections were not closed"
        for spoke in spokes:
            system.tell(spoke, Pings(hub, 5))
        assert hub_after(300).pings == 300
    finally:
        tcp.MAX_IDLE_SOCKET_PERIOD = original
        handle.shutdown()
