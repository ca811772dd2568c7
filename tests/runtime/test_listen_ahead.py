"""Children whose listening sockets their parent opened before forking them: reachable at once, each on its own,
and connected to before anything is sent."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from thespian.actors import ActorAddress

from flower_actors import SystemConfig, secure_thespian, start_actor_system
from flower_actors.runtime import fork_message, listen_ahead
from flower_actors.runtime.actor_base import SafeActor
from flower_actors.runtime.lean_fork import use_lean_forks


def test_it_is_installed_on_the_pinned_thespian() -> None:
    secure_thespian()
    assert listen_ahead.installed()


def test_an_address_made_without_a_lookup_is_the_one_thespian_makes() -> None:
    from thespian.system.transport.IPBase import TCPv4ActorAddress

    secure_thespian()
    listen_ahead._address("127.0.0.1", 40001)  # the first is made by Thespian; the next ones are copies
    ours = listen_ahead._address("127.0.0.1", 40002)
    theirs = ActorAddress(TCPv4ActorAddress("127.0.0.1", 40002, external=True))
    assert ours == theirs and str(ours) == str(theirs)
    assert hash(ours.addressDetails) == hash(theirs.addressDetails)
    assert ours.addressDetails.__getstate__() == theirs.addressDetails.__getstate__()
    assert pickle.loads(pickle.dumps(ours)) == theirs


@dataclass(frozen=True)
class First:
    number: int


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Own:
    number: int
    address: Any
    pid: int


@dataclass(frozen=True)
class Make:
    count: int


@dataclass(frozen=True)
class Made:
    reachable_at: tuple[Any, ...]
    pids: tuple[int | None, ...]
    own: tuple[Own, ...]
    connected: tuple[bool, ...]
    again: tuple[bool, ...]


class Child(SafeActor):
    def __init__(self) -> None:
        super().__init__()
        self.number = -1
        self.parent: ActorAddress | None = None

    def receive_First(self, message: First, sender: ActorAddress) -> None:
        self.number, self.parent = message.number, sender

    def receive_Ping(self, message: Ping, sender: ActorAddress) -> None:
        self.send(sender, Own(self.number, self.myAddress, os.getpid()))


class Parent(SafeActor):
    def __init__(self) -> None:
        super().__init__()
        self.asker: ActorAddress | None = None
        self.made: list[fork_message.Created] = []
        self.own: list[Own] = []
        self.connected: tuple[bool, ...] = ()
        self.again: tuple[bool, ...] = ()

    def receive_Make(self, message: Make, sender: ActorAddress) -> None:
        self.asker = sender
        use_lean_forks(self)  # as the Spawner: forks deferred, then back to back
        self.made = fork_message.create_many(self, Child, [First(n) for n in range(message.count)])
        # Connected ahead (sending nothing), then the first message to each goes over that connection.
        self.connected = tuple(listen_ahead.connect_ahead(self, c.reachable_at) for c in self.made)
        self.again = tuple(listen_ahead.connect_ahead(self, c.reachable_at) for c in self.made)
        for created in self.made:  # before the loop runs again: straight to where the child listens
            self.send(created.reachable_at, Ping())

    def receive_Own(self, message: Own, sender: ActorAddress) -> None:
        self.own.append(message)
        if len(self.own) == len(self.made) and self.asker is not None:
            made = Made(
                tuple(c.reachable_at for c in self.made),
                tuple(c.pid for c in self.made),
                tuple(self.own),
                self.connected,
                self.again,
            )
            self.send(self.asker, made)


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2.0)
        try:
            probe.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
    return False


@contextmanager
def _answer(actor_class: type, message: Any) -> Iterator[Any]:
    """A new actor system's answer from a new ``actor_class`` actor to ``message``; the system runs until the end."""
    handle = start_actor_system(SystemConfig())
    try:
        yield handle.system.ask(handle.system.createActor(actor_class), message, 30)
    finally:
        handle.shutdown()


def test_children_are_reachable_at_once_where_they_listen_and_none_keeps_a_sibling_s_socket() -> None:
    with _answer(Parent, Make(4)) as made:
        assert isinstance(made, Made), made
        assert None not in made.reachable_at and None not in made.pids
        assert made.connected == (True,) * 4 and made.again == (False,) * 4, "one connection each, kept"
        by_number = {own.number: own for own in made.own}
        assert sorted(by_number) == [0, 1, 2, 3], "each got its own first message"
        for number, (address, pid) in enumerate(zip(made.reachable_at, made.pids, strict=True)):
            assert by_number[number].address == address, "where the parent was told it listens"
            assert by_number[number].pid == pid
        ports = [a.addressDetails.sockname[1] for a in made.reachable_at]
        assert len(set(ports)) == 4
        victim = made.pids[0]
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not _refused(ports[0]) and time.monotonic() < deadline:  # until its exit closed its socket
            time.sleep(0.05)
        assert _refused(ports[0]), "a sibling forked after it must not keep its listening socket open"
        assert not _refused(ports[3]), "the others still listen"


@dataclass(frozen=True)
class MakeFailing:
    count: int


@dataclass(frozen=True)
class AfterFailure:
    pids: tuple[int | None, ...]
    reachable: tuple[bool, ...]
    failed: tuple[bool, ...]
    fds_before: int
    fds_after: int


class FailingParent(SafeActor):
    """Forks children as the Spawner does, with its second fork failing (as ``fork`` may: EAGAIN)."""

    def receive_MakeFailing(self, message: MakeFailing, sender: ActorAddress) -> None:
        from flower_actors.runtime import lean_fork

        use_lean_forks(self)
        forks = [0]
        real_fork = lean_fork.LeanProcess.fork

        def fork(process: Any) -> None:
            forks[0] += 1
            if forks[0] == 2:
                raise BlockingIOError("fork: Resource temporarily unavailable")
            real_fork(process)

        lean_fork.LeanProcess.fork = fork  # type: ignore[method-assign]  # in this actor's process only
        fds_before = len(os.listdir("/proc/self/fd"))
        try:
            made = fork_message.create_many(self, Child, [First(n) for n in range(message.count)])
        finally:
            lean_fork.LeanProcess.fork = real_fork  # type: ignore[method-assign]
        pids = tuple(m.pid for m in made)
        reachable = tuple(m.reachable_at is not None for m in made)
        failed = tuple(m.failed for m in made)
        self.send(sender, AfterFailure(pids, reachable, failed, fds_before, len(os.listdir("/proc/self/fd"))))


def test_a_fork_that_fails_costs_only_its_own_child_and_leaves_no_listening_socket_open() -> None:
    with _answer(FailingParent, MakeFailing(4)) as answer:
        assert isinstance(answer, AfterFailure), answer
        assert answer.pids[1] is None and None not in (answer.pids[0], *answer.pids[2:]), answer.pids
        assert answer.reachable == (True, False, True, True)
        assert answer.failed == (False, True, False, False)
        assert answer.fds_after <= answer.fds_before, "the parent holds none of its children's sockets"
