"""The heartbeat thread: only heartbeats keep a node online, so they never wait for a pull or a push.

It runs in the link's process on its own HTTP connection (a ``FleetSession``
twin with the same key): a slow pull, a large push or an install in the
link's actor never delays it. Every ``interval x 0.8`` (with jitter, as
Flower's node) it sends one; after a failure it tries again within a couple
of seconds, well before the SuperLink's patience (2 x interval) runs out.
A 401 means the SuperLink no longer knows the node: the thread raises
``needs_rejoin`` for the actor and pauses until the actor gives it the new id.
"""

from __future__ import annotations

import logging
import random
import threading

from ..errors import FleetError, NodeUnknown
from .fleet import FleetSession

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE = 2.0


class Heartbeat:
    """A daemon thread that sends ``SendNodeHeartbeat`` for ``session``'s node."""

    def __init__(self, session: FleetSession, interval: float) -> None:
        self.session = session
        self.interval = interval
        self.needs_rejoin = threading.Event()
        self.sent = 0
        self.failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="flower-actors-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def rejoined(self, node_id: int) -> None:
        """The actor joined again: beat for ``node_id`` from now on."""
        with self._lock:
            self.session.node_id = node_id
            self.needs_rejoin.clear()

    def _loop(self) -> None:
        wait = self.interval * 0.8 * (1 + random.uniform(-0.1, 0.1))
        while not self._stop.wait(wait):
            wait = self.interval * 0.8 * (1 + random.uniform(-0.1, 0.1))
            if self.needs_rejoin.is_set():
                wait = 0.2
                continue
            try:
                with self._lock:
                    ok = self.session.heartbeat(self.interval)
                if ok:
                    self.sent += 1
                    continue
                raise NodeUnknown("the SuperLink does not recognise this node's heartbeat")
            except NodeUnknown as exc:
                log.warning("heartbeat refused (%s): the node joins the SuperLink again", exc)
                self.needs_rejoin.set()
                wait = 0.2
            except FleetError as exc:
                self.failures += 1
                log.warning("heartbeat failed (%s); retrying in %.0f s", exc, RETRY_AFTER_FAILURE)
                wait = min(wait, RETRY_AFTER_FAILURE)
            except Exception:  # never let the thread die: the node would go offline silently
                self.failures += 1
                log.exception("heartbeat failed unexpectedly")
                wait = min(wait, RETRY_AFTER_FAILURE)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=6.0)
        self.session.close()
