"""Keep Thespian's TCP transport on one address and authenticate every frame.

Stock ``multiprocTCPBase`` listens on 0.0.0.0 and unpickles whatever arrives,
so anyone who can connect can run code. ``secure_thespian()`` patches the
transport, process-wide and before any system starts (forked actors inherit
the patches):

- every socket binds to the address it advertises, ``bind_host``
  (127.0.0.1 by default) instead of 0.0.0.0;
- every frame carries an HMAC-SHA256 tag over its pickle, checked before
  anything is unpickled; a frame without a valid tag is dropped and its
  connection closed (Thespian logs "corrupted incoming data");
- a frame that announces more than ``max_frame_bytes`` is refused before
  it is buffered;
- ``TCPTransport.close()`` really closes its sockets (in Thespian 4.0.1 its
  shutdown helper tests ``isinstance(socket.error, Exception)``, which is
  never true, so every external ``createActor`` leaked a listening socket).

All processes of one system must hold the same secret. A single-host system
generates one per process tree; systems on several hosts share one through
``FLOWER_ACTORS_SECRET`` (hex) or the ``secret`` argument.
"""

from __future__ import annotations

import hmac
import os
import pickle
import secrets
import socket
import sys
from typing import Any, Optional

from .errors import ConfigError

__all__ = ["SECRET_ENV", "secure_thespian", "transport_secret"]

SECRET_ENV = "FLOWER_ACTORS_SECRET"
"""Environment variable holding the shared frame-signing secret, as hex."""

_TAG_BYTES = 32


class UnauthenticatedFrame(Exception):
    """A frame's HMAC tag did not match: it was not sent by one of our processes."""


class _SignedPickle:
    """A drop-in for Thespian's module-level ``serializer`` (``dumps``/``loads``)."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def dumps(self, obj: Any) -> bytes:
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        return hmac.digest(self.key, payload, "sha256") + payload

    def loads(self, frame: bytes) -> Any:
        tag, payload = frame[:_TAG_BYTES], frame[_TAG_BYTES:]
        if len(tag) != _TAG_BYTES or not hmac.compare_digest(tag, hmac.digest(self.key, payload, "sha256")):
            raise UnauthenticatedFrame("frame rejected: bad or missing HMAC tag")
        return pickle.loads(payload)


_serializer: Optional[_SignedPickle] = None
_bind_host: Optional[str] = None


def transport_secret() -> Optional[bytes]:
    """The secret this process signs frames with, or ``None`` before ``secure_thespian()``."""
    return None if _serializer is None else _serializer.key


def _import_ipbase_offline() -> Any:
    """Import Thespian's IPBase without the host-name lookups it does at import.

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
    return ipbase


def secure_thespian(
    bind_host: str = "127.0.0.1",
    secret: Optional[bytes] = None,
    max_frame_bytes: int = 256 * 1024 * 1024,
) -> None:
    """Patch Thespian's TCP transport in this process (idempotent).

    Call it before creating an ``ActorSystem``; ``start_actor_system`` does.
    """
    global _serializer, _bind_host
    if _bind_host is not None and bind_host != _bind_host:
        raise ConfigError(f"Thespian is already bound to {_bind_host} in this process; cannot rebind to {bind_host}")
    try:
        socket.inet_pton(socket.AF_INET, bind_host)
    except OSError:
        raise ConfigError(f"bind_host must be an IPv4 address, got {bind_host!r}") from None
    os.environ["THESPIAN_BASE_IPADDR"] = bind_host

    if secret is None:
        secret_hex = os.environ.get(SECRET_ENV)
        if secret_hex:
            try:
                secret = bytes.fromhex(secret_hex)
            except ValueError:
                raise ConfigError(f"{SECRET_ENV} must be hex") from None
        elif _serializer is not None:
            secret = _serializer.key
        else:
            secret = secrets.token_bytes(32)
    if len(secret) < 16:
        raise ConfigError("the transport secret must have at least 16 bytes")

    ipbase = _import_ipbase_offline()
    ipbase.thisSystem.add_local_addr(bind_host)
    from thespian.system.transport import TCPTransport as tcp
    from thespian.system.transport import streamBuffer

    if _serializer is None:
        _serializer = _SignedPickle(secret)
        ipbase.IPActorAddress.bindArgs = property(lambda self: ((self.sockname[0], self.bindname[1]),))
        _limit_frame_size(streamBuffer.ReceiveBuffer, max_frame_bytes)
        _fix_socket_close(tcp.TCPTransport)
    else:
        _serializer.key = secret
    _bind_host = bind_host
    tcp.serializer = _serializer
    tcp.ackMsg = streamBuffer.toSendBuffer(streamBuffer.ackPacket, _serializer.dumps)
    tcp.ackDataErrMsg = streamBuffer.toSendBuffer(streamBuffer.ackDataErrPacket, _serializer.dumps)


def _limit_frame_size(buffer_class: Any, max_frame_bytes: int) -> None:
    """Make ``ReceiveBuffer`` refuse a frame whose announced size is too large."""
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


def _fix_socket_close(transport_class: Any) -> None:
    """Make ``close()`` release the listening socket and the idle reused connections."""
    original_close = transport_class.close

    def close(self: Any) -> None:
        for idle in list(getattr(self, "_openSockets", {}).values()):
            _close_socket(idle)
        if hasattr(self, "_openSockets"):
            self._openSockets = {}
        original_close(self)

    transport_class._safeSocketShutdown = staticmethod(_close_socket)
    transport_class.close = close
