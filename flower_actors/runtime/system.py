"""Start and stop a Thespian actor system that leaves nothing behind.

``start_actor_system()`` gives a ``multiprocTCPBase`` system on a free admin
port, every socket on ``bind_host`` with authenticated frames (see
``transport_security``), the file-descriptor soft limit raised, and logging
configured. ``ActorSystemHandle.shutdown()`` calls Thespian's ``shutdown()``
with a time limit and then SIGKILLs whatever is left of the system's session:
Thespian's admin starts its own session (``setsid``), every actor shares it,
and a stuck actor survives ``shutdown()`` otherwise. A watchdog actor kills
the session if the program that started the system dies without shutting
it down (SIGKILL, a crash): Thespian's admin is a daemon and would live on.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from thespian.actors import ActorSystem

from ..errors import ConfigError, SystemStartError
from . import thespian_compat
from .actor_base import GetProcessInfo, ProcessInfo, SafeActor
from .logs import ActorFormatter
from .proc import listening_processes, process_alive, session_processes
from .transport_security import secure_thespian

__all__ = [
    "ActorSystemHandle",
    "SystemConfig",
    "free_port",
    "kill_session",
    "process_alive",
    "session_processes",
    "start_actor_system",
    "started_sessions",
]

log = logging.getLogger(__name__)

SYSTEM_BASE = "multiprocTCPBase"
WATCHDOG_PERIOD = 1.0
"""Seconds between the watchdog's checks that the creating program is alive."""

_started_sessions: list[int] = []


@dataclass(frozen=True)
class SystemConfig:
    """How to start an actor system."""

    bind_host: str = "127.0.0.1"
    """The one address every socket binds to (and advertises)."""
    admin_port: int | None = None
    """Thespian's admin port; ``None`` picks a free one (never reuse a fixed port across runs)."""
    log_file: str | None = None
    """Where actors' log records go (besides warnings to stderr)."""
    log_level: int = logging.INFO
    """Level for ``log_file``."""
    stderr_level: int = logging.WARNING
    """Level of the actors' records written to stderr."""
    fd_limit: int = 65536
    """Raise the soft limit of open files to this (capped by the hard limit)."""
    secret: bytes | None = None
    """Frame-signing secret shared by every process of the system (random by default)."""
    shutdown_timeout: float = 5.0
    """How long Thespian's ``shutdown()`` may take before the session is killed."""
    capabilities: dict[str, Any] | None = None
    """Extra Thespian capabilities for this system."""

    def __post_init__(self) -> None:
        if self.admin_port is not None and not (isinstance(self.admin_port, int) and 0 < self.admin_port < 65536):
            raise ConfigError(f"admin_port must be a TCP port number, got {self.admin_port!r}")
        if not (isinstance(self.shutdown_timeout, (int, float)) and self.shutdown_timeout > 0):
            raise ConfigError(f"shutdown_timeout must be positive, got {self.shutdown_timeout!r}")


@dataclass(frozen=True)
class WatchCreator:
    """Watchdog: kill this system's session once process ``pid`` (the program that started it) is gone."""

    pid: int


class _Watchdog(SafeActor):
    """Reports the system's session id; then kills the session if its creator dies without shutting down.

    Thespian's admin is a daemon: when the program that started it is
    SIGKILLed or crashes, every actor would live on.
    """

    creator = 0

    def receive_WatchCreator(self, message: WatchCreator, sender: Any) -> None:
        if os.getsid(0) == os.getsid(message.pid):
            log.error("watchdog refused: the actor system shares its creator's session")
            return
        self.creator = message.pid
        self.wakeupAfter(timedelta(seconds=WATCHDOG_PERIOD))

    def receive_WakeupMessage(self, message: Any, sender: Any) -> None:
        if self.creator and not process_alive(self.creator):
            log.error("the program that started this actor system (pid %d) is gone: stopping every actor", self.creator)
            os.killpg(os.getsid(0), signal.SIGKILL)
        self.wakeupAfter(timedelta(seconds=WATCHDOG_PERIOD))


def private_endpoint(system: ActorSystem) -> ActorSystem:
    """A new external endpoint of ``system`` whose replies no other endpoint sees (close it with ``close_endpoint``).

    Thespian's ``ask`` and ``listen`` return whatever reaches an endpoint, so
    two threads sharing one would take each other's replies.
    """
    endpoint: ActorSystem = thespian_compat.private_endpoint(system)
    return endpoint


def close_endpoint(endpoint: ActorSystem) -> None:
    """Close an endpoint made by ``private_endpoint`` (its socket); safe to call twice."""
    thespian_compat.close_endpoint(endpoint, lambda exc: log.debug("closing an endpoint failed: %s", exc))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _raise_fd_limit(target: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _log_defs(config: SystemConfig) -> dict[str, Any]:
    handlers: dict[str, Any] = {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "level": config.stderr_level},
    }
    if config.log_file:
        handlers["file"] = {
            "class": "logging.FileHandler",
            "filename": config.log_file,
            "formatter": "plain",
            "level": config.log_level,
        }
    return {
        "version": 1,
        "formatters": {"plain": {"()": f"{ActorFormatter.__module__}.{ActorFormatter.__qualname__}"}},
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": min(config.log_level, config.stderr_level)},
        "loggers": {"httpx": {"level": logging.WARNING}},
        "disable_existing_loggers": False,
    }


def kill_process(pid: int) -> None:
    """SIGKILL ``pid`` if it still exists."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_session(session_id: int, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process of ``session_id`` and wait until they are gone.

    Refuses to touch the caller's own session. Returns the pids still alive
    at the timeout (normally none).
    """
    if session_id <= 1 or session_id == os.getsid(0):
        raise ValueError(f"refusing to kill session {session_id}: it is the caller's or the system's")
    deadline = time.monotonic() + timeout
    while True:
        alive = session_processes(session_id)
        if not alive or time.monotonic() > deadline:
            return alive
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def started_sessions() -> list[int]:
    """Session ids of every system started by this process (for leak checks)."""
    return list(_started_sessions)


class ActorSystemHandle:
    """A started actor system: use ``system`` like any ``ActorSystem``, then ``shutdown()``."""

    def __init__(self, system: ActorSystem, config: SystemConfig, admin_port: int, session_id: int) -> None:
        self.system = system
        self.config = config
        self.admin_port = admin_port
        self.session_id = session_id
        self._closed = False

    def shutdown(self) -> list[int]:
        """Stop the system and every process of it; returns pids that would not die (normally none)."""
        if self._closed:
            return []
        self._closed = True
        stopper = threading.Thread(target=self._thespian_shutdown, name="thespian-shutdown", daemon=True)
        stopper.start()
        stopper.join(self.config.shutdown_timeout)
        survivors = kill_session(self.session_id)
        stopper.join(1.0)
        if survivors:
            log.error("processes %s of actor system session %d survived SIGKILL", survivors, self.session_id)
        return survivors

    def kill_now(self) -> list[int]:
        """SIGKILL every process of the system at once, without asking anything; pids that survived."""
        self._closed = True
        return kill_session(self.session_id)

    def _thespian_shutdown(self) -> None:
        try:
            self.system.shutdown()
        except Exception:  # the session kill that follows cleans up
            log.debug("Thespian shutdown failed", exc_info=True)

    @property
    def processes(self) -> list[int]:
        """Pids of the system's live processes (admin, logger, actors)."""
        return session_processes(self.session_id)

    def __enter__(self) -> ActorSystemHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def start_actor_system(config: SystemConfig | None = None) -> ActorSystemHandle:
    """Start a hardened ``multiprocTCPBase`` actor system (see the module docstring)."""
    config = config or SystemConfig()
    secure_thespian(config.bind_host, config.secret)
    _raise_fd_limit(config.fd_limit)
    port = config.admin_port or free_port(config.bind_host)
    capabilities = dict(config.capabilities or {})
    capabilities["Admin Port"] = port
    there = set(listening_processes(port))  # normally none: never ended below
    try:
        system = ActorSystem(SYSTEM_BASE, capabilities, logDefs=_log_defs(config), transientUnique=True)
    except Exception as exc:
        _stop_admin_on(port, there)
        raise SystemStartError(
            f"cannot start a {SYSTEM_BASE} actor system on {config.bind_host}:{port}: {exc}"
        ) from exc
    try:
        watchdog = system.createActor(_Watchdog)
        info = system.ask(watchdog, GetProcessInfo(), 10.0)
        system.tell(watchdog, WatchCreator(os.getpid()))
    except Exception as exc:
        info = exc
    if not isinstance(info, ProcessInfo):
        _shutdown_quietly(system)
        _stop_admin_on(port, there)
        raise SystemStartError(f"the actor system on port {port} did not answer ({info!r})")
    _started_sessions.append(info.session_id)
    return ActorSystemHandle(system, config, port, info.session_id)


def _shutdown_quietly(system: ActorSystem) -> None:
    try:
        system.shutdown()
    except Exception:
        log.debug("shutdown after a failed start failed", exc_info=True)


def _stop_admin_on(port: int, there: set[int]) -> None:
    """After a failed start, end the admin Thespian started anyway on ``port``, and everything in its session.

    Thespian gives up on an admin that is slow to answer (a loaded machine)
    and raises, but that admin and its logger live on, detached. It is the
    process that listens on ``port`` now and did not before (``there``), in
    a session of its own; nothing else is touched.
    """
    sessions: dict[int, int] = {}  # session -> a pid of it that listens
    for pid in set(listening_processes(port)) - there:
        try:
            sessions.setdefault(os.getsid(pid), pid)
        except ProcessLookupError:
            continue
    for session, pid in sessions.items():
        if session in (0, 1, os.getsid(0)):  # Thespian's admin detaches into a session of its own
            log.warning("after a failed start, process %d listens on port %d: not an admin, left alone", pid, port)
            continue
        log.warning("after a failed start: stopping the admin Thespian left on port %d (session %d)", port, session)
        kill_session(session)
