"""Actors get the ``__init__`` arguments Thespian gives them, with the names read once per class, not per process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
from thespian.actors import ActorAddress

from flower_actors import SystemConfig, secure_thespian, start_actor_system
from flower_actors.runtime import actor_init, fork_message
from flower_actors.runtime.actor_base import SafeActor


class NoInit:
    pass


class PlainInit:
    def __init__(self) -> None:
        self.got: dict[str, Any] = {}


class WantsCapabilities:
    def __init__(self, capabilities: Any) -> None:
        self.got = {"capabilities": capabilities}


class WantsBoth:
    def __init__(self, requirements: Any = None, capabilities: Any = None) -> None:
        self.got = {"requirements": requirements, "capabilities": capabilities}


class KeywordOnly:
    def __init__(self, *, capabilities: Any = "not given") -> None:
        self.got = {"capabilities": capabilities}


class TakesAnything:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.got = dict(kwargs)


SHAPES = (NoInit, PlainInit, WantsCapabilities, WantsBoth, KeywordOnly, TakesAnything)


def _made(create: Any, cls: type) -> tuple[type, dict[str, Any]]:
    from thespian.system.utilis import withPossibleInitArgs

    made = create(withPossibleInitArgs(capabilities={"caps": 1}, requirements={"reqs": 2}), cls)
    return type(made), getattr(made, "got", {})


def test_installed_on_the_pinned_thespian() -> None:
    secure_thespian()
    assert actor_init.installed()


@pytest.mark.parametrize("cls", SHAPES, ids=lambda c: c.__name__)
def test_each_class_gets_what_thespians_own_create_gives_it(cls: type) -> None:
    from thespian.system.utilis import withPossibleInitArgs

    secure_thespian()
    ours = withPossibleInitArgs.create
    theirs = ours.__wrapped__
    assert _made(ours, cls) == _made(theirs, cls)


def test_the_names_are_read_once_per_init(monkeypatch: pytest.MonkeyPatch) -> None:
    from thespian.system.utilis import withPossibleInitArgs

    secure_thespian()
    reads: list[Any] = []
    real = actor_init.inspect.getfullargspec
    monkeypatch.setattr(actor_init.inspect, "getfullargspec", lambda f: reads.append(f) or real(f))

    class Fresh:
        def __init__(self, capabilities: Any) -> None:
            self.got = {"capabilities": capabilities}

    for _ in range(3):
        assert _made(withPossibleInitArgs.create, Fresh)[1] == {"capabilities": {"caps": 1}}
    assert reads == [Fresh.__init__]


def test_a_create_it_was_not_written_for_is_left_alone() -> None:
    from thespian.system.utilis import withPossibleInitArgs

    secure_thespian()
    ours = withPossibleInitArgs.create

    def another_create(self: Any, klass: type) -> Any:
        """Not Thespian 4.0.1's."""
        return klass()

    withPossibleInitArgs.create = another_create
    try:
        assert not actor_init.cache_init_arguments()
        assert withPossibleInitArgs.create is another_create
    finally:
        withPossibleInitArgs.create = ours


# Through a real actor system: a child forked by ``create_with`` finds its class's names already read.

READS = [0]
"""How often this process read an ``__init__``'s names (inherited by the processes it forks)."""


@dataclass(frozen=True)
class MakeChild:
    pass


@dataclass(frozen=True)
class Hello:
    pass


@dataclass(frozen=True)
class ChildReport:
    capabilities: dict[str, Any]
    reads_at_init: int
    pid: int


@dataclass(frozen=True)
class ParentReport:
    child: ChildReport
    reads_before_fork: int
    pid: int


class CapableChild(SafeActor):
    def __init__(self, capabilities: dict[str, Any]) -> None:
        super().__init__()
        self.capabilities = dict(capabilities)
        self.reads_at_init = READS[0]

    def receive_Hello(self, message: Hello, sender: ActorAddress) -> None:
        self.send(sender, ChildReport(self.capabilities, self.reads_at_init, os.getpid()))


class CountingParent(SafeActor):
    def __init__(self) -> None:
        super().__init__()
        self.asker: ActorAddress | None = None
        self.reads_before_fork = -1

    def receive_MakeChild(self, message: MakeChild, sender: ActorAddress) -> None:
        self.asker = sender
        read = actor_init._read_names

        def counting(init: Any) -> Any:
            READS[0] += 1
            return read(init)

        actor_init._read_names = counting  # this process and its children count
        actor_init.remember_init_arguments(CapableChild)
        self.reads_before_fork = READS[0]
        fork_message.create_with(self, CapableChild, Hello())

    def receive_ChildReport(self, message: ChildReport, sender: ActorAddress) -> None:
        if self.asker is not None:
            self.send(self.asker, ParentReport(message, self.reads_before_fork, os.getpid()))


def test_a_forked_child_gets_its_capabilities_without_reading_its_init_again() -> None:
    handle = start_actor_system(SystemConfig())
    try:
        answer = handle.system.ask(handle.system.createActor(CountingParent), MakeChild(), 30)
        assert isinstance(answer, ParentReport), answer
        assert answer.reads_before_fork == 1
        assert answer.child.pid not in (os.getpid(), answer.pid)
        assert answer.child.reads_at_init == answer.reads_before_fork, "the child read its __init__ again"
        assert "Thespian Version" in answer.child.capabilities
    finally:
        handle.shutdown()
