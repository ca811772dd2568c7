"""Fewer passes of Thespian's TCP loop per message: each step that can finish now, finishes now.

Thespian 4.0.1's TCP transport took five passes of its loop for two actors
to exchange one message each way, where the bytes need two; every pass costs
an ``epoll_wait`` and a couple of hundred Python calls (~80 us here):

- after a message's last byte left, the sender waited for its socket to be
  writable again, one pass, before it began to wait for the acknowledgement;
- a receiver reads the first 20 bytes of what arrives, to learn its length,
  and the rest only at the next pass. An acknowledgement is 21 bytes, so
  each took two passes, and so did each message.

The wrappers here keep Thespian's steps and add what can be done at once:
the sender waits for the acknowledgement as soon as its last byte left, and
a reader that has just learned a length reads the rest if it is already
there (one ``recv``, far cheaper than a pass; if the bytes are not there
yet, the next pass reads them as before). A read never goes past the end of
the message being read, as with Thespian's own, so what follows it on the
connection is left for the step that expects it.

``install()`` wraps the steps only when they are the ones this was written
for (``WRAPPED``, the hash of their source); otherwise they stay as they
are, and nothing but speed is lost.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from typing import Any

__all__ = ["WRAPPED", "install", "installed"]

log = logging.getLogger(__name__)

WRAPPED = "39ea3b8854030be9b0a4f846d6414aa06d113901e2805ea939c0d002c7322f2b"
"""SHA-256 of the sources of Thespian 4.0.1's ``TCPTransport`` steps wrapped here (``_STEPS``), in order."""

_STEPS = ("_next_XMIT_2", "_next_XMIT_3", "_next_XMIT_4", "_check_XMIT_4_done", "_handleReadableIncoming")
_MAX_READ = 1024000  # what Thespian's own read asks for at most


def _fingerprint(transport_class: Any) -> str:
    digest = hashlib.sha256()
    for name in _STEPS:
        try:
            digest.update(inspect.getsource(getattr(transport_class, name)).encode())
        except (AttributeError, OSError, TypeError):
            return ""
    return digest.hexdigest()


def installed() -> bool:
    """Whether Thespian's TCP transport runs the wrapped steps."""
    from thespian.system.transport.TCPTransport import TCPTransport

    return getattr(TCPTransport._next_XMIT_2, "_flower_actors", False)


def install() -> bool:
    """Wrap Thespian's send, acknowledgement and receive steps; whether they are (see the module's text)."""
    from thespian.system.transport.TCPTransport import TCPTransport

    if installed():
        return True
    if _fingerprint(TCPTransport) != WRAPPED:
        log.debug("Thespian's TCP steps are not the ones tcp_steps was written for: they stay as they are")
        return False
    TCPTransport._next_XMIT_2 = _after_send(TCPTransport._next_XMIT_2)
    TCPTransport._next_XMIT_4 = _read_ack_at_once(TCPTransport._next_XMIT_4)
    TCPTransport._handleReadableIncoming = _read_message_at_once(TCPTransport._handleReadableIncoming)
    return True


def _after_send(send: Any) -> Any:
    from thespian.system.transport.TCPTransport import TCPTransport

    sent_all = TCPTransport._XMITStepShutdownWrite

    def next_xmit_2(self: Any, intent: Any) -> Any:
        more = send(self, intent)
        if more and intent.stage == sent_all:  # the last byte left: wait for the acknowledgement from now on
            return self._next_XMIT_3(intent)
        return more

    next_xmit_2._flower_actors = True  # type: ignore[attr-defined]
    return next_xmit_2


def _started(buffer: Any) -> bool:
    """Whether a receive buffer holds part of a frame (its length is known or being read), not all of it."""
    return buffer is not None and not buffer.is_empty() and not buffer.isDone()


def _read_ack_at_once(read_ack: Any) -> Any:
    from thespian.system.transport.TCPTransport import TCPTransport

    waiting = TCPTransport._XMITStepWaitForAck

    def next_xmit_4(self: Any, intent: Any) -> Any:
        more = read_ack(self, intent)
        while more and intent.stage == waiting and _started(getattr(intent, "ackbuf", None)):
            try:
                received = intent.socket.recv(intent.ackbuf.remainingAmount())
            except (OSError, AttributeError):  # not there yet, or an error Thespian's next read meets and handles
                break
            if not received:  # closed: Thespian's next read sees it
                break
            more = self._check_XMIT_4_done(intent, received)
        return more

    return next_xmit_4


def _read_message_at_once(read: Any) -> Any:
    from thespian.system.transport import TCPTransport as tcp

    def handle_readable_incoming(self: Any, inc: Any, has_exclusive_flag: bool = False) -> Any:
        result = read(self, inc, has_exclusive_flag=has_exclusive_flag)
        while result is inc and inc.socket and not inc.receivedAllData():
            try:
                received = inc.socket.recv(min(_MAX_READ, inc.remainingSize()))
            except OSError:  # not there yet, or an error Thespian's next read meets and handles
                break
            if not received:  # closed: Thespian's next read sees it
                break
            try:
                inc.addData(received)
            except Exception:  # as Thespian's own read: bad data closes the connection
                tcp.thesplog("corrupted incoming data; closing socket", level=logging.WARNING)
                inc.close()
                return None
            result = self._addedDataToIncoming(inc, has_exclusive_flag=has_exclusive_flag)
        return result

    return handle_readable_incoming
