"""A forked actor's listening socket opened by its parent, so that its address is known at the fork.

A new Thespian actor process opens its own listening socket, then connects
to its parent to say where it listens (``EndpointConnected``); until that
arrives, the parent holds whatever is sent to the child. For the Spawner
that meant, per WorkloadClient, a connection and an exchange from the child
to the Spawner, and one more to the LeadClient to tell it the address.

With ``open_for_children`` the parent binds and listens before it forks, with
the very calls Thespian's child would make. The child's ``TCPTransport``
(``install`` wraps its ``__init__``) takes that socket and its address
instead of opening its own, and skips its ``EndpointConnected``; after the
fork the parent records the child as connected, as Thespian does when that
message arrives (``record_connected``). A connection made
before the child's loop runs waits in the socket's backlog: another process
may connect at once (``connect_ahead``).

Only Thespian 4.0.1's ``TCPTransport.__init__`` (``WRAPPED``) is replaced;
with any other, children open their own sockets as before.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

from .fingerprint import fingerprint
from .thespian_compat import _require, import_ipbase_offline

__all__ = [
    "WRAPPED",
    "Listening",
    "available",
    "connect_ahead",
    "install",
    "installed",
    "open_for_children",
    "record_connected",
]

log = logging.getLogger(__name__)

WRAPPED = "eabcf02e37125c2a89405f6f472e1508cfb698b750516328bd9dc05944432c8e"
"""sha256 of the source of the ``TCPTransport.__init__`` this replaces for a child (Thespian 4.0.1's)."""

_carried: tuple[int, int, Listening] | None = None
"""(pid of the parent that set it, which socket, the sockets) while a fork is under way."""
_templates: dict[tuple[str, str], Any] = {}
"""(parent address, THESPIAN_BASE_IPADDR) -> the address template a child of that parent computes."""
_fields: dict[str, tuple[Any, ...]] = {}
"""host -> (class, af, socktype, proto, name) of the addresses ``_address`` makes for it."""


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


class Listening:
    """Listening sockets a parent opened for the children it forks next, one each, in order."""

    def __init__(self, sockets: list[socket.socket], addresses: list[Any]) -> None:
        self.sockets = sockets
        self.addresses = addresses

    def carry(self, index: int | None) -> None:
        """The next fork is the child of socket ``index``: it takes that one and closes its siblings'.
        ``None``: the fork is over."""
        global _carried
        _carried = None if index is None else (os.getpid(), index, self)

    def close(self) -> None:
        """In the parent, after the forks: close its copies (each child holds its own)."""
        global _carried
        _carried = None
        for sock in self.sockets:
            sock.close()


def open_for_children(actor: Any, count: int) -> Listening | None:
    """Before ``actor`` forks ``count`` children: open their listening sockets. ``None``: not here.

    Opened all at once: what the parent writes between two forks stays the private copy of the child forked
    before (its memory), and a socket and its address cost 60-90 page writes each time."""
    if count <= 0 or not available(actor):
        return None
    from thespian.system.transport.TCPTransport import LISTEN_DEPTH

    transport = actor._myRef.transport
    template = _template(transport.myAddress or transport._adminAddr or True)
    sockets: list[socket.socket] = []
    addresses: list[Any] = []
    try:
        for _ in range(count):
            sock = socket.socket(*template.addressDetails.socketArgs)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(*template.addressDetails.bindArgs)
            sock.listen(LISTEN_DEPTH)
            addresses.append(_address(template.addressDetails.connectArgs[0][0], sock.getsockname()[1]))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return Listening(sockets, addresses)


def record_connected(actor: Any, children: Sequence[tuple[Any, Any]]) -> None:
    """In the parent, after a batch of forks: each child (Thespian's record, the address of the socket it took)
    is connected there (what Thespian does when a child's ``EndpointConnected`` arrives). Done after the last
    fork, not between two (see ``open_for_children``)."""
    manager = actor._myRef
    for record, address in children:
        record.childRealAddr = address
        manager._pendingActorReady(record.childNum, address)


def connect_ahead(actor: Any, address: Any) -> bool:
    """Open ``actor``'s connection to a process listening at ``address`` now, sending nothing; whether it did.

    Thespian keeps it as an idle connection and sends ``actor``'s next message to that address over it. The
    process's socket listened before its fork, so the kernel completes the connection at once and the process
    accepts it when its loop next runs. The LeadClient connects so to each new WorkloadClient when their turn is
    forked: made by its first ``RunTasks`` instead, the connection cost a burst on processes that had run one
    task 7% of its time (while the process was waited for); it used to come with the process's own report.
    """
    from thespian.system.transport import TCPTransport as tcp

    transport = getattr(getattr(actor, "_myRef", None), "transport", None)
    table = getattr(transport, "_openSockets", None)
    if table is None or address is None or tcp.opsKey(address) in table:
        return False
    sock = socket.socket(*address.addressDetails.socketArgs)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        error = sock.connect_ex(*address.addressDetails.connectArgs)
    except OSError:
        sock.close()
        return False
    if error not in (0, errno.EINPROGRESS):
        sock.close()
        return False
    table[tcp.opsKey(address)] = tcp.IdleSocket(sock, address)
    return True


def _template(parent: Any) -> Any:
    """The address a child of ``parent`` starts from, as Thespian's child computes it (once per parent)."""
    key = (str(parent), os.environ.get("THESPIAN_BASE_IPADDR", ""))
    template = _templates.get(key)
    if template is None:
        from thespian.actors import ActorAddress

        template = _templates[key] = ActorAddress(import_ipbase_offline().TCPv4ActorAddress(None, 0, external=parent))
    return template


def _address(host: str, port: int) -> Any:
    """``ActorAddress(TCPv4ActorAddress(host, port, external=True))``, the child's own, without its name lookup
    after the first (the same fields)."""
    from thespian.actors import ActorAddress

    fields = _fields.get(host)
    if fields is None:
        made = import_ipbase_offline().TCPv4ActorAddress(host, port, external=True)
        _fields[host] = (type(made), made.af, made.socktype, made.proto, made.sockname[0])
        return ActorAddress(made)
    cls, af, socktype, proto, name = fields
    details = cls.__new__(cls)
    details.__dict__.update(af=af, socktype=socktype, proto=proto, sockname=(name, port), bindname=("", port))
    return ActorAddress(details)


def _take() -> tuple[socket.socket, Any] | None:
    """In a child just forked after ``Listening.carry``: its socket and address; its siblings' are closed."""
    global _carried
    carried, _carried = _carried, None
    if carried is None or carried[0] == os.getpid():
        return None
    _, index, listening = carried
    for i, sock in enumerate(listening.sockets):
        if i != index:
            os.close(sock.detach())  # or a sibling's socket would live on here after the sibling ended
    return listening.sockets[index], listening.addresses[index]


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
    if fingerprint(original) != WRAPPED:
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
