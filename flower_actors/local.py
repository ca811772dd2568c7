"""Blocking helpers for scripts and tests: a whole federation on this machine.

``run_node(...)`` starts an actor system, an embedded server and one
LeadClient, yields a ``LocalFederation`` (make drivers, read status), and on
exit — normal, exception or Ctrl-C — stops the node gracefully and then the
system, leaving no process behind. ``local_federation(nodes)`` does the same
for several nodes (the FED's picture).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from thespian.actors import ActorAddress

from .config import AppRef, NodeConfig, app_spec
from .control import (
    GetNodeStatus,
    LeadClientStarted,
    NodeStatus,
    NodeStopped,
    RegisterWorkload,
    StartLeadClient,
    StopNode,
    StopWorkload,
    WorkloadRegistered,
    WorkloadStopped,
)
from .driver import Driver, ask_for
from .errors import ConfigError, SystemStartError
from .link.embedded import EmbeddedServer, GetServerStatus, ServerStatus, SetServerFault
from .messages import NodeId, WorkloadId
from .node.lead_client import LeadClient
from .runtime.system import ActorSystemHandle, SystemConfig, start_actor_system

__all__ = ["LocalFederation", "exit_on_sigterm", "local_federation", "run_node"]

log = logging.getLogger(__name__)

ASK_TIMEOUT = 10.0


class LocalFederation:
    """A running system: one embedded server and one LeadClient per node."""

    def __init__(self, handle: ActorSystemHandle, server: ActorAddress, leads: dict[NodeId, ActorAddress]) -> None:
        self.handle = handle
        self.server = server
        self.leads = leads
        self.started: dict[NodeId, LeadClientStarted] = {}
        self._drivers: list[Driver] = []
        self._lock = threading.Lock()  # one ask at a time on the main endpoint: replies never cross threads

    @property
    def system(self) -> Any:
        """The Thespian ``ActorSystem``."""
        return self.handle.system

    @property
    def node_ids(self) -> list[NodeId]:
        return list(self.leads)

    def driver(self, driver_id: str | None = None) -> Driver:
        """A new driver on the embedded server, with an endpoint of its own (one per thread)."""
        driver = Driver(self.system, self.server, driver_id)
        with self._lock:
            self._drivers.append(driver)
        return driver

    def _lead(self, node_id: NodeId | None) -> ActorAddress:
        if node_id is None:
            if len(self.leads) != 1:
                raise ConfigError(f"name a node: this federation has {len(self.leads)}")
            return next(iter(self.leads.values()))
        try:
            return self.leads[node_id]
        except KeyError:
            raise ConfigError(f"no node {node_id!r}; nodes are {list(self.leads)}") from None

    def _ask(self, address: ActorAddress, message: Any, expected: type, timeout: float = ASK_TIMEOUT) -> Any:
        """Ask and wait for a reply of type ``expected``, skipping late replies to earlier requests."""
        with self._lock:
            return ask_for(self.system, address, message, lambda reply: isinstance(reply, expected), timeout)

    def status(self, node_id: NodeId | None = None) -> NodeStatus:
        """The node's counters (``node_id`` may be left out when there is one node)."""
        status: NodeStatus = self._ask(self._lead(node_id), GetNodeStatus(), NodeStatus)
        return status

    def server_status(self) -> ServerStatus:
        status: ServerStatus = self._ask(self.server, GetServerStatus(), ServerStatus)
        return status

    def register_workload(
        self, workload_id: WorkloadId, app: AppRef, config: dict[str, Any] | None = None, node_id: NodeId | None = None
    ) -> None:
        """Serve ``workload_id`` with ``app`` on a running node."""
        reply: WorkloadRegistered = self._ask(
            self._lead(node_id), RegisterWorkload(workload_id, app_spec(app, config)), WorkloadRegistered
        )
        if reply.error:
            raise ConfigError(reply.error)

    def stop_workload(self, workload_id: WorkloadId, node_id: NodeId | None = None) -> bool:
        """Stop ``workload_id``'s WorkloadClient on a node; False if it had none."""
        reply: WorkloadStopped = self._ask(self._lead(node_id), StopWorkload(workload_id), WorkloadStopped)
        return reply.was_running

    def set_server_fault(self, mode: str | None) -> None:
        """Make the embedded server unreachable (``"silent"``), failing (``"error"``) or healthy (``None``)."""
        self._ask(self.server, SetServerFault(mode), SetServerFault)

    def stop(self, timeout: float = 5.0, interrupted: bool = False) -> list[int]:
        """Stop every node (in-flight tasks get up to ``timeout`` s), then the system.

        Returns pids that survived (normally none). Safe to call twice. In the
        main thread a Ctrl-C or SIGTERM during the stop kills every process at
        once; ``interrupted`` (a first Ctrl-C brought us here) says so in a warning.
        """
        if not self.leads:
            return self.handle.shutdown()
        with _second_signal_stops_now(self.handle):
            running = 0
            for lead in self.leads.values():
                with contextlib.suppress(Exception):
                    running += self._ask(lead, GetNodeStatus(), NodeStatus, 2.0).tasks_in_flight
            hint = "; Ctrl-C again to stop now" if threading.current_thread() is threading.main_thread() else ""
            log.log(
                logging.WARNING if interrupted else logging.INFO,
                "stopping: waiting up to %g s for %d running task(s)%s",
                timeout,
                running,
                hint,
            )
            for node_id, lead in self.leads.items():
                try:
                    self._ask(lead, StopNode(timeout), NodeStopped, timeout + ASK_TIMEOUT)
                except Exception:
                    log.warning("stopping node %r failed", node_id, exc_info=True)
            self.leads = {}
            with self._lock:
                drivers, self._drivers = self._drivers, []
            for driver in drivers:
                driver.close()
            return self.handle.shutdown()


@contextlib.contextmanager
def _second_signal_stops_now(handle: ActorSystemHandle) -> Iterator[None]:
    """While a stop waits, a Ctrl-C (or SIGTERM) kills the system's processes and ends the program at once.

    The user asked twice: every process of the node is SIGKILLed, then this
    program exits (``128 + signal``). It cannot raise instead: a call into
    Thespian waiting on the killed processes swallows the exception and blocks
    for its own timeout.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def now(signum: int, frame: Any) -> None:
        log.warning("stopping now: killing every process of the node")
        handle.kill_now()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(128 + signum)

    previous = {sig: signal.signal(sig, now) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_on_sigterm() -> None:
    """Make SIGTERM raise ``SystemExit`` in this program, so ``with`` blocks stop their systems.

    For command-line programs (the demo, the soak, the benchmark); a library
    should not install signal handlers behind its user's back.
    """

    def terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)


def _start(nodes: Sequence[NodeConfig], system: SystemConfig | None) -> LocalFederation:
    ids = [n.node_id for n in nodes]
    if not nodes or len(set(ids)) != len(ids):
        raise ConfigError(f"give at least one node and unique node ids, got {ids}")
    for node in nodes:
        if not isinstance(node, NodeConfig):
            raise ConfigError(f"nodes must be NodeConfig, got {type(node).__name__}")
    handle = start_actor_system(system)
    federation = LocalFederation(handle, ActorAddress(None), {})
    try:
        federation.server = handle.system.createActor(EmbeddedServer)
        for node in nodes:
            lead = handle.system.createActor(LeadClient)
            federation.leads[node.node_id] = lead
            started = federation._ask(lead, StartLeadClient(node, federation.server), LeadClientStarted)
            if started.error:
                raise SystemStartError(f"node {node.node_id!r}: {started.error}")
            federation.started[node.node_id] = started
    except BaseException:
        federation.stop(timeout=0.5)
        raise
    return federation


@contextlib.contextmanager
def local_federation(nodes: Sequence[NodeConfig], system: SystemConfig | None = None) -> Iterator[LocalFederation]:
    """Run an embedded server and one LeadClient per ``NodeConfig``; stop all on exit."""
    federation = _start(nodes, system)
    try:
        yield federation
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C or SIGTERM (exit_on_sigterm): say what the stop waits for
        federation.stop(interrupted=True)
        raise
    finally:
        federation.stop()


def run_node(
    config: NodeConfig | None = None, *, system: SystemConfig | None = None, **node_options: Any
) -> contextlib.AbstractContextManager[LocalFederation]:
    """Run one node (``NodeConfig(**node_options)`` unless ``config`` is given) with an embedded server.

    ``with run_node(app="pkg.mod:MyClient", long_poll=True) as node:
    results = node.driver().run(tasks, timeout=60)``
    """
    if config is not None and node_options:
        raise ConfigError("give either a NodeConfig or NodeConfig options, not both")
    try:
        node = config or NodeConfig(**node_options)
    except TypeError as exc:
        raise ConfigError(f"bad node option: {exc}") from None
    return local_federation([node], system)
