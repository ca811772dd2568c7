"""Every read or patch of a Thespian internal, one function each.

Thespian 4's public API does not cover what this package needs: binding to
one address, signing frames, bounding frame sizes, closing sockets, an
event loop whose cost does not grow with every connection kept open,
knowing whether an actor's sends are still unacknowledged, and a private
endpoint for a thread. Each such reach into Thespian's modules lives here and checks
first that the internal exists; on a Thespian without it, it raises
``ThespianIncompatible`` instead of silently doing something else.
``check_installed()`` runs every check (a test calls it); ``setup.cfg`` pins
the Thespian versions these were checked on.
"""

from __future__ import annotations

import errno
import math
import select
import selectors
import socket
import sys
from collections.abc import Callable
from typing import Any

from ..errors import ThespianIncompatible

__all__ = [
    "bind_to_advertised_address",
    "check_installed",
    "close_endpoint",
    "close_idle_connections",
    "fix_socket_close",
    "import_ipbase_offline",
    "install_serializer",
    "lighten_connection_bookkeeping",
    "limit_frame_size",
    "pending_transmits",
    "private_endpoint",
    "release_child_pipes",
    "set_signal_handlers_directly",
    "use_poll_selector",
]

CHECKED_ON = "4.0.1"
"""The Thespian version every function here was checked against."""


def _require(obj: Any, *names: str) -> None:
    missing = [name for name in names if not hasattr(obj, name)]
    if missing:
        version = getattr(sys.modules.get("thespian"), "__version__", "unknown")
        raise ThespianIncompatible(
            f"{getattr(obj, '__name__', type(obj).__name__)} has no {', '.join(missing)} in this Thespian "
            f"({version}); flower_actors was checked on {CHECKED_ON}"
        )


def import_ipbase_offline() -> Any:
    """Import ``thespian.system.transport.IPBase`` without the host-name lookups it does at import.

    ``IPBase`` resolves the host name and the FQDN when first imported, which
    can send DNS queries off this machine; single-host use needs neither.
    """
    if "thespian.system.transport.IPBase" in sys.modules:
        return sys.modules["thespian.system.transport.IPBase"]
    real_gethostname, real_getfqdn = socket.gethostname, socket.getfqdn
    socket.gethostname = lambda: "localhost"
    socket.getfqdn = lambda name="": "localhost"
    try:
        import thespian.system.transport.IPBase as ipbase
    finally:
        socket.gethostname, socket.getfqdn = real_gethostname, real_getfqdn
    _require(ipbase, "thisSystem", "IPActorAddress")
    return ipbase


def bind_to_advertised_address(host: str) -> None:
    """Make every Thespian socket bind to the address it advertises (``host``), not to 0.0.0.0."""
    ipbase = import_ipbase_offline()
    _require(ipbase.thisSystem, "add_local_addr")
    _require(ipbase.IPActorAddress, "bindArgs")
    ipbase.thisSystem.add_local_addr(host)
    ipbase.IPActorAddress.bindArgs = property(lambda self: ((self.sockname[0], self.bindname[1]),))


def install_serializer(serializer: Any) -> None:
    """Make the TCP transport pickle every message and acknowledgement with ``serializer`` (``dumps``/``loads``)."""
    from thespian.system.transport import TCPTransport as tcp
    from thespian.system.transport import streamBuffer

    _require(tcp, "serializer", "ackMsg", "ackDataErrMsg")
    _require(streamBuffer, "toSendBuffer", "ackPacket", "ackDataErrPacket")
    tcp.serializer = serializer
    tcp.ackMsg = streamBuffer.toSendBuffer(streamBuffer.ackPacket, serializer.dumps)
    tcp.ackDataErrMsg = streamBuffer.toSendBuffer(streamBuffer.ackDataErrPacket, serializer.dumps)


def limit_frame_size(max_frame_bytes: int) -> None:
    """Make the receive buffer refuse a frame that announces more than ``max_frame_bytes``, before buffering it."""
    from thespian.system.transport import streamBuffer

    buffer_class = streamBuffer.ReceiveBuffer
    _require(buffer_class, "addMore")
    original = buffer_class.addMore

    def add_more(self: Any, buf: bytes) -> None:
        original(self, buf)
        if self._size is not None and self._size > max_frame_bytes:
            raise ValueError(f"frame of {self._size} bytes exceeds the limit of {max_frame_bytes}")

    buffer_class.addMore = add_more


def _close_socket(sock: Any) -> None:
    sock = getattr(sock, "socket", sock)
    if sock is None or not hasattr(sock, "close"):
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError, TypeError):
        pass
    try:
        sock.close()
    except (OSError, AttributeError, TypeError):
        pass


def fix_socket_close() -> None:
    """Make ``TCPTransport.close()`` release its listening socket and idle connections.

    In Thespian 4.0.1 its shutdown helper tests ``isinstance(socket.error,
    Exception)``, which is never true, so every external ``createActor``
    leaked a listening socket.
    """
    from thespian.system.transport.TCPTransport import TCPTransport

    _require(TCPTransport, "close", "_safeSocketShutdown")
    original_close = TCPTransport.close

    def close(self: Any) -> None:
        for idle in list(getattr(self, "_openSockets", {}).values()):
            _close_socket(idle)
        if hasattr(self, "_openSockets"):
            self._openSockets = {}
        original_close(self)

    TCPTransport._safeSocketShutdown = staticmethod(_close_socket)
    TCPTransport.close = close


_POLL_MASK = (0, select.POLLIN, select.POLLOUT, select.POLLIN | select.POLLOUT)
"""poll(2) events for each ``selectors`` event mask (EVENT_READ = 1, EVENT_WRITE = 2)."""


class PollSelector:
    """The part of a ``selectors`` selector Thespian's TCP loop uses, on ``poll(2)``.

    The loop builds a new selector and registers every socket it keeps open
    on each pass. With the default ``EpollSelector`` that is a system call per
    socket per pass (plus creating and closing the epoll); a WorkloadClient
    keeps a connection to the LeadClient and to the Sender, so with 1,000
    workloads those two spent most of their time registering. Registering
    with ``poll`` costs no system call; the one ``poll`` per pass is cheap.
    A descriptor that is not open raises ``OSError(EBADF)`` from ``select``,
    as the loop's error handling expects (epoll raised it from ``register``).
    """

    def __init__(self) -> None:
        self._poll = select.poll()
        self._events: dict[int, int] = {}

    def register(self, fd: int, events: int, data: Any = None) -> None:
        """Watch ``fd`` (the loop ignores what ``register`` returns, so no key is built)."""
        if fd < 0:
            raise ValueError(f"Invalid file descriptor: {fd!r}")
        if fd in self._events:
            raise KeyError(f"{fd!r} (FD {fd}) is already registered")
        self._poll.register(fd, _POLL_MASK[events & 3])
        self._events[fd] = events

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        wait_ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
        ready = []
        for fd, happened in self._poll.poll(wait_ms):
            if happened & select.POLLNVAL:
                raise OSError(errno.EBADF, f"file descriptor {fd} is not open")
            events = (selectors.EVENT_WRITE if happened & ~select.POLLIN else 0) | (
                selectors.EVENT_READ if happened & ~select.POLLOUT else 0
            )
            wanted = self._events.get(fd, 0)
            if events & wanted:
                ready.append((selectors.SelectorKey(fd, fd, wanted, None), events & wanted))
        return ready

    def close(self) -> None:
        self._events.clear()


def use_poll_selector() -> None:
    """Make Thespian's TCP transport wait on ``PollSelector`` instead of the default selector."""
    from thespian.system.transport import TCPTransport as tcp

    _require(tcp, "selectors")
    if getattr(tcp.selectors, "DefaultSelector", None) is PollSelector:
        return
    shim = type(sys)("thespian_selectors")  # the module's own view of ``selectors``; the real one is untouched
    shim.__dict__.update({k: v for k, v in vars(selectors).items() if not k.startswith("__")})
    shim.DefaultSelector = PollSelector  # type: ignore[attr-defined]
    tcp.selectors = shim


def lighten_connection_bookkeeping() -> None:
    """Make the checks the TCP loop runs on every open connection on every pass cheap.

    On each pass the loop hashes the address of every idle connection
    (``IPActorAddress.__hash__`` builds two tuples each time) and asks each
    whether it expired (``IdleSocket.expired`` builds a timer view each
    time). With a connection per WorkloadClient in the LeadClient and the
    Sender, that was a third of their time at 1,000 workloads. The hash is
    computed once per address (an address's hash must not change anyway);
    expiry is a float compared with the clock.
    """
    import time

    from thespian.system.transport import TCPTransport as tcp

    ipbase = import_ipbase_offline()
    address_class = ipbase.IPActorAddress
    _require(address_class, "__hash__", "__getstate__", "socketArgs", "connectArgs")
    _require(tcp, "IdleSocket", "MAX_IDLE_SOCKET_PERIOD")
    _require(tcp.IdleSocket, "__init__", "expired")
    if getattr(address_class.__hash__, "_flower_actors", False):
        return
    original_hash = address_class.__hash__

    def cached_hash(self: Any) -> int:
        try:
            return self.__dict__["_fa_hash"]
        except KeyError:
            value = self.__dict__["_fa_hash"] = original_hash(self)
            return value

    original_getstate = address_class.__getstate__

    def getstate(self: Any) -> Any:  # a str hash differs between processes (PYTHONHASHSEED): never send it
        state = original_getstate(self)
        if "_fa_hash" in state:
            state = {k: v for k, v in state.items() if k != "_fa_hash"}
        return state

    cached_hash._flower_actors = True  # type: ignore[attr-defined]
    address_class.__hash__ = cached_hash
    address_class.__getstate__ = getstate
    original_init = tcp.IdleSocket.__init__

    def idle_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._fa_expires_at = time.monotonic() + tcp.MAX_IDLE_SOCKET_PERIOD.total_seconds()

    def idle_expired(self: Any) -> bool:
        return time.monotonic() >= self._fa_expires_at

    tcp.IdleSocket.__init__ = idle_init
    tcp.IdleSocket.expired = idle_expired


def set_signal_handlers_directly() -> None:
    """Let Thespian's new actor processes set their signal handlers without ``signal.signal``'s wrapping.

    Each new actor process sets a handler for every catchable signal (about 60)
    through ``signal.signal``, which turns the previous handler into a
    ``Handlers`` member and, since that handler is a function, pays a
    ``ValueError`` for it each time: 2.5 us a call against 0.14 us for
    ``_signal.signal``, which takes the same arguments, installs the same
    handler and raises the same errors. Thespian never reads what it returns.
    """
    import importlib

    from thespian.system import multiprocCommon

    _require(multiprocCommon, "set_signal_handler")
    multiprocCommon.set_signal_handler = importlib.import_module("_signal").signal


def _transport_of(actor: Any) -> Any:
    ref = getattr(actor, "_myRef", None)
    transport = getattr(ref, "transport", None)
    if transport is None:
        raise ThespianIncompatible("an actor has no _myRef.transport in this Thespian; cannot reach its transport")
    return transport


def close_idle_connections(actor: Any, keep: Any) -> int:
    """Close ``actor``'s idle connections except the one to ``keep``; how many were closed.

    The TCP transport keeps every connection it used open for 20 minutes and
    visits each on every pass of its loop. An actor that talks to many peers
    once (the Spawner: a first message to each process it forks) calls this
    so that its loop stays as cheap as its few real peers make it. A peer
    that sends again simply connects again.
    """
    transport = _transport_of(actor)
    _require(transport, "_openSockets")
    closed = 0
    for key, idle in list(transport._openSockets.items()):
        if idle.rmtaddr == keep:
            continue
        del transport._openSockets[key]
        _close_socket(idle)
        closed += 1
    return closed


def release_child_pipes(actor: Any) -> int:
    """Close the two pipe ends ``multiprocessing`` keeps in ``actor`` per live child process; how many children.

    Each ``fork`` leaves the parent a pipe to notice the child's exit and one
    the child could watch for the parent's; nothing of Thespian uses them
    (it polls ``waitpid``). Kept, they pile up in a parent of many children,
    every later child inherits all of them, and each child's start-up frees
    their records: its start-up took 3-7 ms more at 1,000 workloads than at
    10. Their finalizer closes them now instead of when the child is reaped.
    """
    children = getattr(getattr(actor, "_myRef", None), "_child_procs", None)
    if children is None:
        raise ThespianIncompatible("an actor has no _myRef._child_procs in this Thespian; cannot reach its children")
    released = 0
    for child in reversed(children):  # newest first: the ones released before are all older
        finalizer = getattr(getattr(getattr(child, "childProc", None), "_popen", None), "finalizer", None)
        if finalizer is None or not finalizer.still_active():
            break
        finalizer()
        released += 1
    return released


def pending_transmits(actor: Any) -> bool:
    """Whether ``actor``'s transport holds sends not acknowledged yet (in progress or queued)."""
    transport = _transport_of(actor)
    _require(transport, "_aTB_numPendingTransmits", "_aTB_queuedPendingTransmits")
    return bool(transport._aTB_numPendingTransmits or transport._aTB_queuedPendingTransmits)


def private_endpoint(system: Any) -> Any:
    """A new external endpoint of ``system`` whose replies no other endpoint sees (close with ``close_endpoint``).

    What ``ActorSystem.private()`` makes, without tying its life to a ``with``.
    """
    from thespian import actors

    _require(actors, "ExternalContext")
    base = getattr(system, "_systemBase", None)
    if base is None or not hasattr(base, "external_clone"):
        raise ThespianIncompatible(
            "this ActorSystem has no _systemBase.external_clone(); cannot make a private endpoint"
        )
    return actors.ExternalContext(base.external_clone())


def close_endpoint(endpoint: Any, on_error: Callable[[BaseException], None] = lambda exc: None) -> None:
    """Close an endpoint made by ``private_endpoint`` (its socket)."""
    try:
        endpoint.exit_clone()
    except Exception as exc:  # already closed, or its system is gone
        on_error(exc)


def check_installed() -> None:
    """Check every internal this module relies on against the installed Thespian; raises ``ThespianIncompatible``."""
    from thespian import actors
    from thespian.system import actorManager, multiprocCommon
    from thespian.system import transport as transport_module
    from thespian.system.transport import TCPTransport as tcp
    from thespian.system.transport import asyncTransportBase, streamBuffer

    ipbase = import_ipbase_offline()
    _require(ipbase.thisSystem, "add_local_addr")
    _require(ipbase.IPActorAddress, "bindArgs")
    _require(tcp, "serializer", "ackMsg", "ackDataErrMsg", "TCPTransport", "selectors")
    _require(tcp.TCPTransport, "close", "_safeSocketShutdown", "external_transport_clone")
    _require(tcp, "IdleSocket", "MAX_IDLE_SOCKET_PERIOD")
    _require(tcp.IdleSocket, "__init__", "expired")
    _require(ipbase.IPActorAddress, "__hash__", "__getstate__", "socketArgs", "connectArgs")
    _require(streamBuffer, "toSendBuffer", "ackPacket", "ackDataErrPacket", "ReceiveBuffer")
    _require(streamBuffer.ReceiveBuffer, "addMore")
    _require(actors, "ExternalContext")
    _require(multiprocCommon, "set_signal_handler", "uncatchable_signals", "setProcName")  # forked_start too
    _require(actorManager.ActorManager, "run")
    _require(transport_module, "TransmitIntent", "ReceiveEnvelope")
    _require(transport_module.TransmitIntent, "identify")
    _require(transport_module.ReceiveEnvelope, "identify")
    transport = asyncTransportBase.asyncTransportBase.__new__(asyncTransportBase.asyncTransportBase)
    asyncTransportBase.asyncTransportBase.__init__(transport)
    _require(transport, "_aTB_numPendingTransmits", "_aTB_queuedPendingTransmits")
