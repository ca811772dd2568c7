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

The handler is Thespian's code (MIT licence, Copyright Kevin Quick), adapted.
``install()`` puts it in place only when the installed handler is the one
it was adapted from (``ADAPTED_FROM``, the hash of its source).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from typing import Any

__all__ = ["ADAPTED_FROM", "endpoint_connected", "install", "installed"]

log = logging.getLogger(__name__)

ADAPTED_FROM = "ac754abb29323449554b9d28845f2bd2286199876141f87d4584be891e016452"
"""SHA-256 of the source of Thespian 4.0.1's ``MultiProcReplicator.h_EndpointConnected``."""


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


def installed() -> bool:
    """Whether Thespian's parents look up a connected child with ``endpoint_connected``."""
    from thespian.system.multiprocCommon import MultiProcReplicator

    return getattr(MultiProcReplicator.h_EndpointConnected, "_flower_actors", False)


def install() -> bool:
    """Put ``endpoint_connected`` in place; whether it is (see the module's text)."""
    from thespian.system.multiprocCommon import MultiProcReplicator

    if installed():
        return True
    try:
        source = inspect.getsource(MultiProcReplicator.h_EndpointConnected)
    except (OSError, TypeError):
        source = ""
    if hashlib.sha256(source.encode()).hexdigest() != ADAPTED_FROM:
        log.debug("Thespian's h_EndpointConnected is not the one child_lookup was adapted from: it stays")
        return False
    MultiProcReplicator.h_EndpointConnected = endpoint_connected
    return True
