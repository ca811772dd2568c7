"""``SafeActor``: the base of every actor here.

It dispatches a message to ``receive_<ClassName>`` and never lets an
exception escape ``receiveMessage``: Thespian would redeliver the message
(running a handler twice) and then bounce a ``PoisonMessage`` to its sender.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from thespian.actors import Actor, ActorAddress

from .logs import name_process

__all__ = ["TRANSPORT_PAUSE", "GetProcessInfo", "ProcessInfo", "SafeActor"]

log = logging.getLogger(__name__)

TRANSPORT_PAUSE = timedelta(seconds=0.0005)
"""How long an actor that continues its own work waits so Thespian's transport runs: sends go out,
acknowledgements and messages come in. A zero-delay ``wakeupAfter`` (or a message to itself) would
run the next handler with no transport step in between."""


@dataclass(frozen=True)
class GetProcessInfo:
    """Ask any of our actors for its process id and session id."""


@dataclass(frozen=True)
class ProcessInfo:
    """An actor's process id and session id (all actors of a system share the session)."""

    pid: int
    session_id: int


class SafeActor(Actor):
    """Dispatch on the message's class name; log, count and survive any fault."""

    PROCESS_NAME: ClassVar[str | None] = None
    """Its process's name in log records and, with setproctitle, in ps: ``None`` is the class's name, ``""``
    leaves the process's name alone (an instance made outside an actor system)."""

    def __init__(self) -> None:
        super().__init__()
        name = type(self).__name__.lstrip("_") if self.PROCESS_NAME is None else self.PROCESS_NAME
        if name:
            name_process(name)

    def receiveMessage(self, message: Any, sender: ActorAddress) -> None:
        name = "receive_" + type(message).__name__
        handler = getattr(self, name, None)
        try:
            if handler is None:
                self.receive_unexpected(message, sender)
            else:
                handler(message, sender)
        except (Exception, KeyboardInterrupt):  # logged: any of these is a bug in this package
            log.exception("%s failed on %s from %s", type(self).__name__, type(message).__name__, sender)

    def receive_unexpected(self, message: Any, sender: ActorAddress) -> None:
        """Called for a message this actor has no handler for."""
        log.warning("%s ignored unexpected %s from %s", type(self).__name__, type(message).__name__, sender)

    def receive_GetProcessInfo(self, message: GetProcessInfo, sender: ActorAddress) -> None:
        self.send(sender, ProcessInfo(pid=os.getpid(), session_id=os.getsid(0)))

    def receive_ActorExitRequest(self, message: Any, sender: ActorAddress) -> None:
        """Thespian stops the actor after this returns; subclasses may clean up."""

    def receive_PoisonMessage(self, message: Any, sender: ActorAddress) -> None:
        log.error("%s: a message it sent could not be handled: %r", type(self).__name__, message.poisonMessage)
