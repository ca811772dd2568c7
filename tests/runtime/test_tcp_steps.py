"""Thespian's TCP steps, wrapped to finish at once: installed only on the steps they were written for, and two
real actors exchanging messages of every size in two passes of their loops per exchange (Thespian's own: five)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from thespian.actors import ActorAddress

from flower_actors import SystemConfig, secure_thespian, start_actor_system
from flower_actors.runtime import tcp_steps
from flower_actors.runtime.actor_base import SafeActor


def test_the_steps_are_wrapped_on_the_pinned_thespian() -> None:
    secure_thespian()
    assert tcp_steps.installed()


def test_steps_it_was_not_written_for_are_left_alone() -> None:
    from thespian.system.transport.TCPTransport import TCPTransport

    ours = TCPTransport._next_XMIT_2

    def another_step(self: Any, intent: Any) -> bool:
        """Not Thespian 4.0.1's."""
        return True

    TCPTransport._next_XMIT_2 = another_step
    try:
        assert not tcp_steps.install()
        assert TCPTransport._next_XMIT_2 is another_step
    finally:
        TCPTransport._next_XMIT_2 = ours


@dataclass(frozen=True)
class Exchange:
    peer: ActorAddress
    count: int
    size: int


@dataclass(frozen=True)
class Echo:
    index: int
    data: bytes


@dataclass(frozen=True)
class Exchanged:
    answers: int
    intact: bool
    passes: int


class EchoActor(SafeActor):
    def receive_Echo(self, message: Echo, sender: ActorAddress) -> None:
        self.send(sender, message)


class ExchangeActor(SafeActor):
    """Sends ``count`` messages to an echo, each after the answer to the one before; counts its loop's passes."""

    def receive_Exchange(self, message: Exchange, sender: ActorAddress) -> None:
        self.asker, self.exchange, self.answers, self.intact = sender, message, 0, True
        self.data = bytes(range(256)) * (message.size // 256)
        self.passes_before = self._passes()
        self.send(message.peer, Echo(0, self.data))

    def _passes(self) -> int:
        return int(self._myRef.transport._openSockets.pass_no)

    def receive_Echo(self, message: Echo, sender: ActorAddress) -> None:
        self.intact = self.intact and message.index == self.answers and message.data == self.data
        self.answers += 1
        if self.answers < self.exchange.count:
            self.send(sender, Echo(self.answers, self.data))
        else:
            self.send(self.asker, Exchanged(self.answers, self.intact, self._passes() - self.passes_before))


def test_two_actors_exchange_messages_of_every_size_in_two_passes_each() -> None:
    handle = start_actor_system(SystemConfig())
    try:
        system = handle.system
        echo, exchanger = system.createActor(EchoActor), system.createActor(ExchangeActor)
        for size, count in ((256, 300), (64 * 1024, 50), (3 * 1024 * 1024, 5)):
            done = system.ask(exchanger, Exchange(echo, count, size), 60)
            assert isinstance(done, Exchanged), done
            assert done.answers == count and done.intact, f"{size} bytes: messages lost, reordered or damaged"
            if size <= 64 * 1024:  # larger ones arrive in pieces: one pass per piece, as before
                assert done.passes <= 3 * count, f"{size} bytes: {done.passes / count:.1f} passes per exchange"
    finally:
        handle.shutdown()
