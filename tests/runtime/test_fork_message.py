"""A child's first message carried by its fork, and the parent's newest-first lookup of a child that connected."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from thespian.actors import ActorAddress, WakeupMessage

from flower_actors import SystemConfig, secure_thespian, start_actor_system
from flower_actors.runtime import child_lookup, fork_message
from flower_actors.runtime.actor_base import SafeActor


def test_both_are_installed_on_the_pinned_thespian() -> None:
    from thespian.system.multiprocCommon import MultiProcReplicator

    secure_thespian()
    assert fork_message.installed()
    assert child_lookup.installed()
    assert MultiProcReplicator._childExited is child_lookup.child_exited


def test_a_handler_it_was_not_adapted_from_is_left_alone() -> None:
    from thespian.system.multiprocCommon import MultiProcReplicator

    ours = MultiProcReplicator.h_EndpointConnected

    def another_handler(self: Any, envelope: Any) -> bool:
        """Not Thespian 4.0.1's."""
        return True

    MultiProcReplicator.h_EndpointConnected = another_handler
    try:
        assert not child_lookup.install()
        assert MultiProcReplicator.h_EndpointConnected is another_handler
    finally:
        MultiProcReplicator.h_EndpointConnected = ours


class Counted:
    """A child record that counts how often its number is read."""

    reads = 0

    def __init__(self, number: int) -> None:
        self._number = number

    @property
    def childNum(self) -> int:
        Counted.reads += 1
        return self._number


@dataclass
class Transport:
    myAddress: str = "the parent"
    sent: list[Any] = field(default_factory=list)

    def scheduleTransmit(self, address: Any, intent: Any) -> None:
        self.sent.append(intent)


@dataclass
class Replicator:
    _child_procs: list[Counted]
    ready: list[tuple[int, str, bool]] = field(default_factory=list)
    transport: Transport = field(default_factory=Transport)

    def _pendingActorReady(self, instance: int, sender: str, isMyChild: bool = True) -> None:
        self.ready.append((instance, sender, isMyChild))


@dataclass
class Connected:
    childInstance: int


@dataclass
class Envelope:
    message: Connected
    sender: str


def test_the_child_that_connected_is_found_among_the_newest_without_reading_the_older_ones() -> None:
    parent = Replicator([Counted(n) for n in range(1, 1001)])
    Counted.reads = 0
    assert child_lookup.endpoint_connected(parent, Envelope(Connected(998), "the real address"))
    assert Counted.reads == 3, "newest first: 1000, 999, 998"
    assert parent._child_procs[997].childRealAddr == "the real address"
    assert not any(hasattr(c, "childRealAddr") for c in parent._child_procs if c._number != 998)
    assert parent.ready == [(998, "the real address", True)] and not parent.transport.sent


def test_a_child_that_ended_before_it_was_heard_connecting_is_not_kept_and_its_exit_is_told() -> None:
    from thespian.actors import ChildActorExited

    parent = Replicator([Counted(n) for n in (1, 2, 4)])  # 3 ended: Thespian's childDied removed it
    assert child_lookup.endpoint_connected(parent, Envelope(Connected(3), "where 3 connected from"))
    assert parent.ready == [(3, "where 3 connected from", False)], "not registered as a live child"
    (intent,) = parent.transport.sent
    assert intent.targetAddr == "the parent" and isinstance(intent.message, ChildActorExited)
    assert intent.message.childAddress == "where 3 connected from"


@dataclass
class Proc:
    alive: bool

    def is_alive(self) -> bool:
        return self.alive

    def join(self, timeout: float | None = None) -> None:
        pass


class Kid:
    """A child record: its number, its local address, its process, its real address once known."""

    def __init__(self, number: int, alive: bool, real: str | None = None) -> None:
        self.childNum, self.childAddr, self.childProc = number, f"local {number}", Proc(alive)
        if real is not None:
            self.childRealAddr = real


@dataclass
class Exiting:
    _child_procs: list[Kid]
    transport: Transport = field(default_factory=Transport)

    @staticmethod
    def _checkChildLiveness(child: Kid) -> bool:
        return child.childProc.is_alive()


def test_children_found_ended_while_one_exit_is_handled_get_their_own_notices() -> None:
    from thespian.actors import ChildActorExited

    # 3's exit is being handled; 2 and 4 ended meanwhile (Thespian dropped them without a notice).
    parent = Exiting([Kid(1, True, "one"), Kid(2, False, "two"), Kid(3, False, "three"), Kid(4, False)])
    child_lookup.child_exited(parent, "three")
    assert [c.childNum for c in parent._child_procs] == [1]
    notices = [i.message for i in parent.transport.sent]
    assert all(isinstance(n, ChildActorExited) for n in notices)
    assert [n.childAddress for n in notices] == ["two", "local 4"]
    assert all(i.targetAddr == "the parent" for i in parent.transport.sent)


@dataclass(frozen=True)
class Hello:
    number: int


@dataclass(frozen=True)
class Later:
    pass


@dataclass(frozen=True)
class MakeChildren:
    count: int
    carried: bool = True


@dataclass(frozen=True)
class Report:
    number: int
    first: Any
    pid: int
    later: bool
    error: str


@dataclass(frozen=True)
class Reports:
    reports: tuple[Report, ...]
    parent_pid: int
    forked: tuple[int | None, ...]


class Child(SafeActor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.parent: ActorAddress | None = None
        self.error = ""

    def receive_Hello(self, message: Hello, sender: ActorAddress) -> None:
        self.seen.append(message)
        self.parent = sender
        try:
            self.wakeupAfter(0.05)  # needs the loop's wake-up time, not set yet when a carried message is handled
        except Exception as exc:
            self.error = repr(exc)

    def receive_Later(self, message: Later, sender: ActorAddress) -> None:
        self.seen.append(message)

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        first = self.seen[0]
        number = first.number if isinstance(first, Hello) else -1
        later = any(isinstance(m, Later) for m in self.seen)
        if self.parent is not None and later:
            self.send(self.parent, Report(number, first, os.getpid(), later, self.error))
        else:
            self.wakeupAfter(0.05)


class Parent(SafeActor):
    def __init__(self) -> None:
        super().__init__()
        self.asker: ActorAddress | None = None
        self.expected = 0
        self.reports: list[Report] = []
        self.pids: list[int | None] = []

    def receive_MakeChildren(self, message: MakeChildren, sender: ActorAddress) -> None:
        self.asker, self.expected = sender, message.count
        fork_message._installed = message.carried  # the fallback: sent over TCP like any message
        for number in range(message.count):
            child, pid, *_ = fork_message.create_with(self, Child, Hello(number))
            self.pids.append(pid)
            self.send(child, Later())  # after the carried one, through Thespian

    def receive_Report(self, message: Report, sender: ActorAddress) -> None:
        self.reports.append(message)
        if len(self.reports) == self.expected and self.asker is not None:
            self.send(self.asker, Reports(tuple(self.reports), os.getpid(), tuple(self.pids)))


def test_each_child_handles_its_own_first_message_first_whether_carried_or_sent() -> None:
    handle = start_actor_system(SystemConfig())
    try:
        system = handle.system
        for carried in (True, False):
            parent = system.createActor(Parent)
            answer = system.ask(parent, MakeChildren(6, carried), 30)
            assert isinstance(answer, Reports), answer
            assert sorted(r.number for r in answer.reports) == list(range(6))
            for report in answer.reports:
                assert report.first == Hello(report.number), f"carried={carried}: {report}"
                assert report.later and report.pid not in (os.getpid(), answer.parent_pid)
                assert not report.error
            assert len({r.pid for r in answer.reports}) == 6
            assert sorted({r.pid for r in answer.reports}) == sorted(p for p in answer.forked if p is not None)
    finally:
        handle.shutdown()
