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
from typing import Any

from ..errors import ConfigError, UnauthenticatedFrame
from . import (
    actor_init,
    child_lookup,
    fork_message,
    frame_stack,
    listen_ahead,
    log_text,
    tcp_loop,
    tcp_steps,
    thespian_compat,
)

__all__ = ["SECRET_ENV", "UnauthenticatedFrame", "secure_thespian", "transport_secret"]

SECRET_ENV = "FLOWER_ACTORS_SECRET"
"""Environment variable holding the shared frame-signing secret, as hex."""

_TAG_BYTES = 32


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


_serializer: _SignedPickle | None = None
_bind_host: str | None = None


def transport_secret() -> bytes | None:
    """The secret this process signs frames with, or ``None`` before ``secure_thespian()``."""
    return None if _serializer is None else _serializer.key


def _secret(given: bytes | None) -> bytes:
    if given is None:
        secret_hex = os.environ.get(SECRET_ENV)
        if secret_hex:
            try:
                given = bytes.fromhex(secret_hex)
            except ValueError:
                raise ConfigError(f"{SECRET_ENV} must be hex") from None
        elif _serializer is not None:
            given = _serializer.key
        else:
            given = secrets.token_bytes(32)
    if len(given) < 16:
        raise ConfigError("the transport secret must have at least 16 bytes")
    return given


def secure_thespian(
    bind_host: str = "127.0.0.1",
    secret: bytes | None = None,
    max_frame_bytes: int = 256 * 1024 * 1024,
) -> None:
    """Patch Thespian's TCP transport in this process (idempotent).

    Loopback-only sockets, signed frames, bounded frame sizes, sockets
    released on close, and an event loop that pays neither a system call
    nor much Python per open connection on every pass
    (``thespian_compat.use_poll_selector``, ``lighten_connection_bookkeeping``,
    ``tcp_loop``), actor loops that never map and unmap frame-stack chunks
    (``frame_stack``), and debug descriptions of messages built only when
    written (``log_text``).
    Call it before creating an ``ActorSystem``; ``start_actor_system`` does.
    """
    global _serializer, _bind_host
    if _bind_host is not None and bind_host != _bind_host:
        raise ConfigError(f"Thespian is already bound to {_bind_host} in this process; cannot rebind to {bind_host}")
    try:
        socket.inet_pton(socket.AF_INET, bind_host)
    except OSError:
        raise ConfigError(f"bind_host must be an IPv4 address, got {bind_host!r}") from None
    key = _secret(secret)
    os.environ["THESPIAN_BASE_IPADDR"] = bind_host
    if _serializer is None:
        _serializer = _SignedPickle(key)
        thespian_compat.bind_to_advertised_address(bind_host)
        thespian_compat.limit_frame_size(max_frame_bytes)
        thespian_compat.fix_socket_close()
        thespian_compat.use_poll_selector()
        thespian_compat.lighten_connection_bookkeeping()
        thespian_compat.set_signal_handlers_directly()
        tcp_loop.install()
        tcp_steps.install()
        child_lookup.install()
        actor_init.cache_init_arguments()
        listen_ahead.install()
        fork_message.install()  # before the roomy frame stack wraps the loop, so it runs inside it
        frame_stack.steady_actor_stacks()
        log_text.defer_descriptions()
    else:
        _serializer.key = key
    _bind_host = bind_host
    thespian_compat.install_serializer(_serializer)
