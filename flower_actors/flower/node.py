"""``FlowerNode``: a whole Flower node in one actor system — the link, a LeadClient, one WorkloadClient per run.

``run_flower_node(config)`` starts it and yields it; on exit (normal, an
exception, Ctrl-C or SIGTERM turned into ``SystemExit``) it stops pulling,
lets in-flight messages finish and their replies be pushed (bounded by
``stop_timeout``), leaves the SuperLink (deactivate, unregister) and stops
every process. flwr is imported before the actor system starts, so every
process of the node is forked with flwr already in memory and shares those
pages instead of importing its own ~90 MB.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from thespian.actors import ActorAddress

from ..config import MAX_CONTENT_LIMIT, NodeConfig
from ..control import GetNodeStatus, LeadClientStarted, NodeStatus, NodeStopped, StartLeadClient, StopNode
from ..driver import ask_for
from ..errors import ConfigError, SystemStartError
from ..node.lead_client import LeadClient
from ..runtime.system import ActorSystemHandle, SystemConfig, start_actor_system
from ..stats import summary
from ..timeline import write_timeline
from .control import (
    GetLinkStatus,
    GetServedResults,
    JoinSuperLink,
    LeaveSuperLink,
    LinkOptions,
    LinkStatus,
    ServedResults,
    SuperLinkJoined,
    SuperLinkLeft,
)
from .environment import quiet_environment
from .link import NODE_ID, SuperLinkLink
from .run_client import FlowerRunClient

__all__ = ["FlowerNode", "FlowerNodeConfig", "run_flower_node"]

log = logging.getLogger(__name__)

ASK_TIMEOUT = 30.0
JOIN_WAIT = 7 * 24 * 3600.0
"""Longest wait for the link to join (its own --max-retries/--max-wait-time end it sooner)."""
RUN_CLIENT = f"{FlowerRunClient.__module__}:{FlowerRunClient.__qualname__}"


@dataclass(frozen=True)
class FlowerNodeConfig:
    """Everything a Flower node needs: how to reach the SuperLink, and how many runs to serve how."""

    link: LinkOptions = field(default_factory=LinkOptions)
    max_runs: int | None = None
    """Most runs with a live WorkloadClient; at the cap the least recently used idle one is stopped."""
    idle_timeout_s: float | None = 600.0
    """Stop a run's WorkloadClient after this long without a message (``None``: never)."""
    warm_pool: int = 2
    """WorkloadClients started ahead, so a new run's first message does not wait for a process."""
    stop_timeout: float = 10.0
    """On stop, how long in-flight messages may take to finish before they get error replies."""
    long_poll_wait: float = 5.0
    system: SystemConfig = field(default_factory=SystemConfig)
    timeline: str | None = None
    """Where to draw the messages the node served, when it stops (``write_timeline``'s formats); ``None``: no."""
    timeline_messages: int = 100_000
    """The most recent messages the timeline keeps (their timestamps only)."""

    def node_config(self) -> NodeConfig:
        """The LeadClient's configuration."""
        return NodeConfig(
            node_id=NODE_ID,
            app=RUN_CLIENT,
            long_poll=True,
            long_poll_wait=self.long_poll_wait,
            max_workloads=self.max_runs,
            idle_timeout_s=self.idle_timeout_s,
            warm_pool=self.warm_pool,
            max_content_bytes=MAX_CONTENT_LIMIT,
            request_timeout=60.0,  # a pull may install a FAB and fetch large objects
            share_imports=False,  # flwr (gRPC) is imported in each WorkloadClient, never in the Spawner that forks
        )


class FlowerNode:
    """A running Flower node: ask it for its status, stop it."""

    def __init__(self, handle: ActorSystemHandle, config: FlowerNodeConfig) -> None:
        self.handle = handle
        self.config = config
        self.link: ActorAddress | None = None
        self.lead: ActorAddress | None = None
        self.node_id: int | None = None
        self.lead_started: LeadClientStarted | None = None

    def _ask(self, address: ActorAddress, message: Any, expected: type, timeout: float = ASK_TIMEOUT) -> Any:
        return ask_for(self.handle.system, address, message, lambda reply: isinstance(reply, expected), timeout)

    def start(self) -> None:
        """Join the SuperLink (retrying as configured), then start the LeadClient."""
        system = self.handle.system
        self.link = system.createActor(SuperLinkLink)
        joined: SuperLinkJoined = self._ask(
            self.link, JoinSuperLink(self._link_options()), SuperLinkJoined, timeout=JOIN_WAIT
        )
        if joined.error or joined.node_id is None:
            raise SystemStartError(joined.error or "the link did not join the SuperLink")
        self.node_id = joined.node_id
        self.lead = system.createActor(LeadClient)
        started: LeadClientStarted = self._ask(
            self.lead, StartLeadClient(self.config.node_config(), self.link), LeadClientStarted
        )
        if started.error:
            raise SystemStartError(f"the LeadClient did not start: {started.error}")
        self.lead_started = started

    def _link_options(self) -> LinkOptions:
        if self.config.timeline is None:
            return self.config.link
        return dataclasses.replace(self.config.link, keep_results=self.config.timeline_messages)

    def _write_timeline(self) -> None:
        if self.config.timeline is None or self.link is None:
            return
        try:
            served: ServedResults = self._ask(self.link, GetServedResults(), ServedResults)
            title = f"flower-actors-supernode, node {self.node_id}: {len(served.results)} messages"
            path = write_timeline(served.results, self.config.timeline, title=title)
            log.info("timeline of %d message(s) written to %s", len(served.results), path)
        except Exception as exc:  # the stop goes on: a picture is not worth a node left running
            log.warning("cannot write the timeline %s: %s", self.config.timeline, exc)

    def status(self) -> NodeStatus:
        """The LeadClient's counters (WorkloadClients, tasks, deaths, ...)."""
        if self.lead is None:
            raise ConfigError("the node has no LeadClient")
        status: NodeStatus = self._ask(self.lead, GetNodeStatus(), NodeStatus)
        return status

    def link_status(self) -> LinkStatus:
        """The link's counters (messages pulled and answered, runs, joins)."""
        if self.link is None:
            raise ConfigError("the node has no link")
        status: LinkStatus = self._ask(self.link, GetLinkStatus(), LinkStatus)
        return status

    def processes(self) -> list[int]:
        """Pids of every process of the node's actor system."""
        return list(self.handle.processes)

    def _log_summary(self) -> None:
        try:
            link = self.link_status() if self.link is not None else None
        except Exception:
            return
        if link is None or not link.overhead_ms:
            return
        figures = {k: v or 0.0 for k, v in summary([ms / 1000 for ms in link.overhead_ms]).items()}
        log.info(
            "answered %d message(s) (%d error replies, %d refused); "
            "overhead per message: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
            link.pushed,
            link.error_replies,
            link.refused,
            figures["p50"],
            figures["p99"],
            figures["max"],
        )

    def stop(self, interrupted: bool = False) -> list[int]:
        """Drain, push, leave the SuperLink, stop every process; pids that survived (normally none).

        It says what it waits for first: as a warning when ``interrupted`` (a
        first Ctrl-C or SIGTERM brought us here), else at INFO.
        """
        timeout = self.config.stop_timeout
        running = 0
        with contextlib.suppress(Exception):
            running = self._ask(self.lead, GetNodeStatus(), NodeStatus, 2.0).tasks_in_flight if self.lead else 0
        hint = "; Ctrl-C again to stop now" if threading.current_thread() is threading.main_thread() else ""
        log.log(
            logging.WARNING if interrupted else logging.INFO,
            "stopping: waiting up to %g s for %d in-flight message(s), then leaving the SuperLink%s",
            timeout,
            running,
            hint,
        )
        try:
            if self.lead is not None:
                self._ask(self.lead, StopNode(timeout), NodeStopped, timeout + ASK_TIMEOUT)
        except Exception:
            log.warning("stopping the LeadClient failed", exc_info=True)
        self.lead = None
        self._log_summary()
        self._write_timeline()
        try:
            if self.link is not None:
                left: SuperLinkLeft = self._ask(self.link, LeaveSuperLink(), SuperLinkLeft)
                if left.error:
                    log.warning("leaving the SuperLink: %s", left.error)
        except Exception:
            log.warning("leaving the SuperLink failed", exc_info=True)
        self.link = None
        return self.handle.shutdown()


@contextlib.contextmanager
def run_flower_node(config: FlowerNodeConfig) -> Iterator[FlowerNode]:
    """Start a Flower node (see the module docstring) and stop it on exit."""
    quiet_environment()
    handle = start_actor_system(config.system)
    node = FlowerNode(handle, config)
    interrupted = False
    try:
        node.start()
        yield node
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM turned into SystemExit
        interrupted = True
        raise
    finally:
        from ..local import _second_signal_stops_now

        with _second_signal_stops_now(handle):  # a second Ctrl-C or SIGTERM: kill every process, exit now
            node.stop(interrupted)
