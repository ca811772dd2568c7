"""A new actor's first message carried by its fork instead of sent over TCP.

``actor.send(child, message)`` right after ``createActor`` costs both
processes a full Thespian exchange: the parent holds the message until the
child has connected, then opens a connection to it, sends, and waits for the
acknowledgement; the child accepts, reads, checks and unpickles it. For the
Spawner, which forks every WorkloadClient and gives each its first message,
that was a large part of its work per process, and the child could not start
before the Spawner got round to it.

``create_with(actor, cls, message)`` puts ``message`` where the child will
find it in the memory it inherits, then forks it (inside ``createActor``, or
right after for ``create_many``'s deferred forks), so the new process holds
the message from its first instruction. Its ``ActorManager.run`` (wrapped
by ``install``) creates the actor and hands it the message before its loop
starts, as if it had arrived from the parent. A child that Thespian did not
fork right there (it asked its Admin to create it instead) gets the message
the usual way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..errors import ThespianIncompatible
from . import listen_ahead
from .actor_init import remember_init_arguments
from .lean_fork import LeanProcess, deferred_forks
from .thespian_compat import _require

__all__ = ["Created", "child_count", "create_many", "create_with", "install", "installed", "newest_child_pid"]

log = logging.getLogger(__name__)

_carried: tuple[int, Any] | None = None
"""(pid of the parent that set it, the message) while ``create_with`` forks; ``None`` otherwise."""
_installed = False


class Created(NamedTuple):
    """What ``create_with`` made."""

    child: Any
    """The child's address, as ``createActor`` returns it (valid in the creating actor)."""
    pid: int | None
    """The child's pid if the creating actor forked it (``None``: Thespian created it elsewhere)."""
    reachable_at: Any
    """The child's own address, valid in any process, when known at once (``listen_ahead``); else ``None``."""
    failed: bool = False
    """Its fork failed: it has no process, and its first message was not sent."""


def create_with(actor: Any, actor_class: type, message: Any) -> Created:
    """``actor.createActor(actor_class)`` whose first message is ``message`` (``create_many`` of one)."""
    return create_many(actor, actor_class, [message])[0]


def create_many(actor: Any, actor_class: type, messages: Sequence[Any]) -> list[Created]:
    """``actor.createActor(actor_class)`` once per message, each child's first message carried by its fork.

    Each child listens on a socket opened here before the forks (``listen_ahead``) and is recorded as
    connected after them. If ``actor`` forks ``LeanProcess``es, Thespian's bookkeeping for every child runs
    first and the forks then follow back to back (``lean_fork.deferred_forks``).
    """
    remember_init_arguments(actor_class)  # so that the child need not inspect its class
    carry = installed()
    listening = listen_ahead.open_for_children(actor, len(messages)) if carry else None
    connected: list[tuple[Any, Any]] = []  # (Thespian's record, address) of each child on a socket opened here
    try:
        made = _fork_all(actor, actor_class, messages, carry, listening)
        created: list[Created] = []
        for index, (message, (child, record)) in enumerate(zip(messages, made, strict=True)):
            pid = getattr(getattr(record, "childProc", None), "pid", None)
            failed = record is not None and pid is None
            if not failed and not (carry and pid is not None):  # created elsewhere, or nothing carried it
                actor.send(child, message)
            reachable_at = listening.addresses[index] if listening is not None and pid is not None else None
            if reachable_at is not None:
                connected.append((record, reachable_at))
            created.append(Created(child, pid, reachable_at, failed))
        return created
    finally:
        if listening is not None:  # also when a fork failed: no socket stays open here
            listen_ahead.record_connected(actor, connected)
            listening.close()


def _fork_all(
    actor: Any, actor_class: type, messages: Sequence[Any], carry: bool, listening: listen_ahead.Listening | None
) -> list[tuple[Any, Any]]:
    """Create a child per message; (its address, Thespian's record of it if ``actor`` forked it) each."""
    made: list[tuple[Any, Any, LeanProcess | None]] = []  # (address, record, its fork if deferred)
    try:
        with deferred_forks() as deferred:
            for index, message in enumerate(messages):
                before, waiting = child_count(actor), len(deferred)
                _carry(message if carry else None, listening, index)  # a fork that is not deferred takes them now
                child = actor.createActor(actor_class)
                record = _children(actor)[-1] if child_count(actor) > before else None
                made.append((child, record, deferred[waiting] if len(deferred) > waiting else None))
        for index, (message, (_, _, process)) in enumerate(zip(messages, made, strict=True)):
            if process is not None:
                _carry(message if carry else None, listening, index)
                try:
                    process.fork()
                except OSError as exc:  # EAGAIN, ENOMEM: this child has no process (no pid); the others go on
                    log.error("cannot fork a %s: %s", actor_class.__name__, exc)
    finally:
        _carry(None, listening, None)
    return [(child, record) for child, record, _ in made]


def _carry(message: Any, listening: listen_ahead.Listening | None, index: int | None) -> None:
    """What the next fork carries: ``message`` and socket ``index`` of ``listening`` (``None``: nothing)."""
    global _carried
    _carried = None if message is None else (os.getpid(), message)
    if listening is not None:
        listening.carry(index)


def _children(actor: Any) -> list[Any]:
    """Thespian's records of the child processes ``actor`` forked (a fork appends one)."""
    children = getattr(getattr(actor, "_myRef", None), "_child_procs", [])
    if not isinstance(children, list):
        raise ThespianIncompatible("an actor's _myRef._child_procs is not a list in this Thespian")
    return children


def child_count(actor: Any) -> int:
    """How many child processes ``actor`` forked that Thespian still tracks."""
    return len(_children(actor))


def newest_child_pid(actor: Any) -> int | None:
    """The pid of the child process ``actor`` forked last (``None`` if it has none)."""
    children = _children(actor)
    return getattr(getattr(children[-1], "childProc", None), "pid", None) if children else None


def installed() -> bool:
    """Whether actors' loops deliver a message carried by their fork."""
    return _installed


def install() -> None:
    """Wrap ``ActorManager.run`` so that a forked actor handles its carried message first (idempotent).

    Install it before ``frame_stack.steady_actor_stacks``, so that the message is handled in the roomy chunk.
    """
    global _installed
    from thespian.system import actorManager
    from thespian.system.timing import ExpirationTimer
    from thespian.system.transport import ReceiveEnvelope

    manager = actorManager.ActorManager
    _require(manager, "run", "_createInstance", "handleMessages")
    if installed():
        return
    run = manager.run

    def run_carried(self: Any) -> Any:
        global _carried
        carried, _carried = _carried, None
        if carried is not None and carried[0] != os.getpid():  # forked by create_with: its message is here
            if self.actorInst is None:
                self._createInstance()
            if self.actorInst is not None:
                # Its loop sets when to wake up next as it starts; a wakeup asked for now must find a time to
                # compare with (the loop then recomputes it from every wakeup asked for).
                self.transport.run_time = ExpirationTimer(None)
                self.handleMessages(ReceiveEnvelope(getattr(self, "_parentAddr", None), carried[1]))
        return run(self)

    manager.run = run_carried
    _installed = True
