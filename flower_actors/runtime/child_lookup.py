"""A parent finds the child that just connected among its newest children, not its oldest.

When a forked actor connects (``EndpointConnected``), Thespian 4.0.1's
``MultiProcReplicator.h_EndpointConnected`` looks it up in the parent's list
of children from the oldest on. The child that connects is almost always
one of the last few forked, so the Spawner scanned ever more of its children
for each new one: at 1,000 workloads it read ~500 child records per start,
and since each fork shares its pages with the child again, each of those
reads (a reference count written) copied a page: 770 page faults and
~6.6 ms of the Spawner per new WorkloadClient, against ~470 at 100.
``endpoint_connected`` is the same handler scanning newest first; it finds
the same record (child numbers are unique).

One case it handles differently. A child that ends before its parent heard
it connect gets no exit notice from Thespian (the parent knows only its
local address, which cannot be sent), and when its connection is heard
after that, Thespian registered it as a live child: the parent never heard
of its exit and waited for it when exiting. That was rare while a child had
to wait for its first message until it had connected; with the message
carried by the fork (``fork_message``) it starts work at once, and one that
crashes at once hits this. ``endpoint_connected`` sends the parent the exit
notice instead (with the address the child connected from).

And one case Thespian loses. When a parent handles one child's exit notice,
``_childExited`` drops every other child found ended by then from its list
without sending their notices; those stay registered as live children, and
the parent waits for them when it exits (Thespian retries its exit request
to each for seconds). Children whose address is known at the fork
(``listen_ahead``) are registered at once, so a burst of children crashing
together hit this on every node stop. ``child_exited`` sends the notice of
each child it drops, as ``childDied`` does.

The handlers are Thespian's code (MIT licence, Copyright Kevin Quick), adapted.
``install()`` puts each in place only when the installed one is the one it
was adapted from (``ADAPTED_FROM``, ``EXITED_ADAPTED_FROM``: hashes of their
source).
"""

from __future__ import annotations

import logging
from typing import Any

from .fingerprint import fingerprint

__all__ = ["ADAPTED_FROM", "EXITED_ADAPTED_FROM", "child_exited", "endpoint_connected", "install", "installed"]

log = logging.getLogger(__name__)

ADAPTED_FROM = "ac754abb29323449554b9d28845f2bd2286199876141f87d4584be891e016452"
"""SHA-256 of the source of Thespian 4.0.1's ``MultiProcReplicator.h_EndpointConnected``."""
EXITED_ADAPTED_FROM = "910c47068615dc911b16cfe4f9bffd3bde46e06cd966445d5d8922870e26c4f8"
"""SHA-256 of the source of Thespian 4.0.1's ``MultiProcReplicator._childExited``."""


def endpoint_connected(self: Any, envelope: Any) -> bool:
    """``h_EndpointConnected``, scanning the children newest first; a child that already ended is not kept."""
    from thespian.actors import ChildActorExited
    from thespian.system.multiprocCommon import thesplog
    from thespian.system.transport import TransmitIntent

    for C in reversed(getattr(self, "_child_procs", [])):
        if envelope.message.childInstance == C.childNum:
            C.childRealAddr = envelope.sender
            break
    else:
        # Changed: the child ended before its parent heard it connect (``childDied`` removed it, and could not
        # send its exit notice: only a local address was known). Thespian registered it as a live child anyway,
        # so the parent never heard of its exit and waited for it when exiting: the notice goes now.
        thesplog("Child process endpoint connected after it ended: %s", envelope, level=logging.INFO)
        self._pendingActorReady(envelope.message.childInstance, envelope.sender, isMyChild=False)
        self.transport.scheduleTransmit(
            None, TransmitIntent(self.transport.myAddress, ChildActorExited(envelope.sender))
        )
        return True
    self._pendingActorReady(envelope.message.childInstance, envelope.sender)
    return True


endpoint_connected._flower_actors = True  # type: ignore[attr-defined]


def child_exited(self: Any, child_address: Any) -> None:
    """``_childExited``: forget the children that ended, and send the exit notice of each but ``child_address``'s
    (the one being handled)."""
    from thespian.actors import ChildActorExited
    from thespian.system.addressManager import CannotPickleAddress
    from thespian.system.multiprocCommon import thesplog
    from thespian.system.transport import TransmitIntent

    alive: list[Any] = []
    ended: list[Any] = []
    for C in getattr(self, "_child_procs", []):
        (alive if self._checkChildLiveness(C) else ended).append(C)
    self._child_procs = alive
    for C in ended:  # Changed: Thespian dropped these without a notice
        address = getattr(C, "childRealAddr", C.childAddr)
        if address == child_address:
            continue
        try:
            self.transport.scheduleTransmit(None, TransmitIntent(self.transport.myAddress, ChildActorExited(address)))
        except CannotPickleAddress:
            thesplog(
                "child %s is dead but cannot translate address to properly handle it", address, level=logging.ERROR
            )


child_exited._flower_actors = True  # type: ignore[attr-defined]


def installed() -> bool:
    """Whether Thespian's parents look up a connected child with ``endpoint_connected``."""
    from thespian.system.multiprocCommon import MultiProcReplicator

    return getattr(MultiProcReplicator.h_EndpointConnected, "_flower_actors", False)


def install() -> bool:
    """Put ``endpoint_connected`` and ``child_exited`` in place; whether the first is (see the module's text)."""
    from thespian.system.multiprocCommon import MultiProcReplicator

    if not getattr(MultiProcReplicator._childExited, "_flower_actors", False):
        if fingerprint(MultiProcReplicator._childExited) == EXITED_ADAPTED_FROM:
            MultiProcReplicator._childExited = child_exited
        else:
            log.debug("Thespian's _childExited is not the one child_lookup was adapted from: it stays")
    if installed():
        return True
    if fingerprint(MultiProcReplicator.h_EndpointConnected) != ADAPTED_FROM:
        log.debug("Thespian's h_EndpointConnected is not the one child_lookup was adapted from: it stays")
        return False
    MultiProcReplicator.h_EndpointConnected = endpoint_connected
    return True
