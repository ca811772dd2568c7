"""A forked actor's listening socket opened by its parent, so that its address is known at the fork.

A new Thespian actor process opens its own listening socket, then connects
to its parent to say where it listens (``EndpointConnected``); until that
arrives, the parent holds whatever is sent to the child. For the Spawner
that meant, per WorkloadClient, a connection and an exchange from the child
to the Spawner, and one more to the LeadClient to tell it the address.

With ``open_for_child`` the parent binds and listens before it forks, with
the very calls Thespian's child would make. The child's ``TCPTransport``
(``install`` wraps its ``__init__``) takes that socket and its address
instead of opening its own, and skips its ``EndpointConnected``; right
after the fork the parent records the child as connected, as Thespian does
when that message arrives (``child_connected``). A connection made before
the child's loop runs waits in the socket's backlog.

Only Thespian 4.0.1's ``TCPTransport.__init__`` (``WRAPPED``) is replaced;
with any other, children open their own sockets as before.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import socket
from typing import Any

from .thespian_compat import _require, import_ipbase_offline

__all__ = ["WRAPPED", "available", "child_connected", "install", "installed", "open_for_child", "release"]

log = logging.getLogger(__name__)

WRAPPED = "eabcf02e37125c2a89405f6f472e1508cfb698b750516328bd9dc05944432c8e"
"""sha256 of the source of the ``TCPTransport.__init__`` this replaces for a child (Thespian 4.0.1's)."""

_carried: tuple[int, socket.socket, Any] | None = None
"""(pid of the parent that opened it, the listening socket, its address) while a fork is under way."""
_templates: dict[tuple[str, str], Any] = {}
"""(parent address, THESPIAN_BASE_IPADDR) -> the address template a child of that parent computes."""


def installed() -> bool:
    """Whether new actor processes take a listening socket their parent opened for them."""
    from thespian.system.transport.TCPTransport import TCPTransport

    return getattr(TCPTransport.__init__, "_flower_actors", False)


def available(actor: Any) -> bool:
    """Whether the children ``actor`` forks get their listening socket from it (``open_for_child``)."""
    if not installed():
        return False
    from thespian.system.transport.TCPTransport import TCPTransport

    manager = getattr(actor, "_myRef", None)
    capabilities = getattr(manager, "capabilities", None) or {}
    # A routed child's endpoint is Thespian's own affair.
    routed = any(capabilities.get(c) for c in ("Admin Routing", "Outbound Only"))
    return isinstance(getattr(manager, "transport", None), TCPTransport) and not routed


def open_for_child(actor: Any) -> tuple[socket.socket, Any] | None:
    """Before ``actor`` forks a child: open the child's listening socket; its address. ``None``: not here."""
    global _carried
    if not available(actor):
        return None
    from thespian.system.transport.TCPTransport import LISTEN_DEPTH

    transport = actor._myRef.transport
    template = _template(transport.myAddress or transport._adminAddr or True)
    sock = socket.socket(*template.addressDetails.socketArgs)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(*template.addressDetails.bindArgs)
        sock.listen(LISTEN_DEPTH)
        address = _address(template, sock.getsockname()[1])
    except BaseException:
        sock.close()
        raise
    _carried = (os.getpid(), sock, address)
    return sock, address


def release() -> None:
    """In the parent, after the fork (or its failure): close its copy of the child's socket."""
    global _carried
    carried, _carried = _carried, None
    if carried is not None and carried[0] == os.getpid():
        carried[1].close()


def child_connected(actor: Any, address: Any) -> None:
    """In the parent, right after it forked a child on ``open_for_child``'s socket: the child is reachable at
    ``address`` (what Thespian does when the child's ``EndpointConnected`` arrives)."""
    manager = actor._myRef
    child = manager._child_procs[-1]
    child.childRealAddr = address
    manager._pendingActorReady(child.childNum, address)


def _template(parent: Any) -> Any:
    """The address a child of ``parent`` starts from, as Thespian's child computes it (once per parent)."""
    key = (str(parent), os.environ.get("THESPIAN_BASE_IPADDR", ""))
    template = _templates.get(key)
    if template is None:
        from thespian.actors import ActorAddress

        template = _templates[key] = ActorAddress(import_ipbase_offline().TCPv4ActorAddress(None, 0, external=parent))
    return template


def _address(template: Any, port: int) -> Any:
    from thespian.actors import ActorAddress

    return ActorAddress(
        import_ipbase_offline().TCPv4ActorAddress(template.addressDetails.connectArgs[0][0], port, external=True)
    )


def _take() -> tuple[socket.socket, Any] | None:
    """In a child just forked by ``open_for_child``'s caller: the socket and address carried for it."""
    global _carried
    carried, _carried = _carried, None
    if carried is None or carried[0] == os.getpid():
        return None
    return carried[1], carried[2]


def _fingerprint(function: Any) -> str:
    try:
        return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()
    except (OSError, TypeError):
        return ""


def install() -> bool:
    """Let a forked actor's transport take the socket its parent opened (idempotent). Whether it is installed:
    ``False`` when ``TCPTransport.__init__`` is not the one this was written for."""
    import_ipbase_offline()
    from thespian.system.messages.multiproc import EndpointConnected
    from thespian.system.transport import TCPTransport as tcp

    _require(tcp, "TCPTransport", "TCPEndpoint", "REUSE_SOCKETS", "LISTEN_DEPTH")
    if installed():
        return True
    original = tcp.TCPTransport.__init__
    if _fingerprint(original) != WRAPPED:
        log.info("Thespian's TCPTransport.__init__ is not 4.0.1's: each actor process opens its own socket")
        return False

    def init(self: Any, init_type: Any, *args: Any) -> None:
        carried = _take()
        if carried is None or not isinstance(init_type, tcp.TCPEndpoint) or init_type.args[1] or init_type.args[4]:
            if carried is not None:  # an admin's or routed endpoint: Thespian's own way
                carried[0].close()
            original(self, init_type, *args)
            return
        # What the original does for a child's endpoint, with the socket and address made by the parent.
        super(tcp.TCPTransport, self).__init__()
        _, _, self._parentAddr, self._adminAddr, _, self.txOnly = init_type.args
        self.socket, self.myAddress = carried
        self._transmitIntents = {}
        self._waitingTransmits = []
        self._incomingSockets = {}
        self._incomingEnvelopes = []
        self._finished_intents = []
        self._watches = []
        if tcp.REUSE_SOCKETS:
            self._openSockets = {}
        self._checkChildren = False
        self._shutdownSignalled = False
        schedule = self.scheduleTransmit

        def skip_announcement(address: Any, intent: Any) -> Any:
            """The parent knew this address before the fork: its ``EndpointConnected`` is not sent."""
            if not isinstance(intent.message, EndpointConnected):
                return schedule(address, intent)
            del self.scheduleTransmit
            return None

        self.scheduleTransmit = skip_announcement

    init._flower_actors = True  # type: ignore[attr-defined]
    tcp.TCPTransport.__init__ = init
    return True
