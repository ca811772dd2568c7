"""Requests a program sends to the ``SuperLinkLink`` actor, and its replies (plain, no flwr)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..messages import TaskRes

__all__ = [
    "GetLinkStatus",
    "GetServedResults",
    "JoinSuperLink",
    "LeaveSuperLink",
    "LinkOptions",
    "LinkStatus",
    "ServedResults",
    "SuperLinkJoined",
    "SuperLinkLeft",
]


@dataclass(frozen=True)
class LinkOptions:
    """How the link reaches the SuperLink and what it tells each run (flower-supernode's flags)."""

    superlink: str = "127.0.0.1:8000"
    insecure: bool = False
    root_certificates: bytes | None = None
    private_key_pem: bytes | None = None
    """An OpenSSH EC private key (``--auth-supernode-private-key``); ``None``: a fresh key, self-registered."""
    node_config: Mapping[str, Any] = field(default_factory=dict)
    heartbeat_interval: float = 30.0
    max_retries: int | None = None
    """Connection attempts after the first before giving up (``None``: no limit)."""
    max_wait_time: float | None = None
    """Seconds of trying to connect before giving up (``None``: no limit)."""
    task_deadline_s: float | None = None
    """Longest a ClientApp call may run (also capped by each message's TTL)."""
    flwr_home: str = ""
    """Where FABs are installed (``$FLWR_HOME``; empty: flwr's default)."""
    keep_results: int = 0
    """How many served results (timestamps, not payloads) the link keeps for a timeline; 0: none."""


@dataclass(frozen=True)
class JoinSuperLink:
    """Connect, register and activate (retrying within the options' limits), then start heartbeats."""

    options: LinkOptions


@dataclass(frozen=True)
class SuperLinkJoined:
    """The answer to ``JoinSuperLink``: the node id, or why the link gave up."""

    node_id: int | None
    error: str | None = None
    attempts: int = 1


@dataclass(frozen=True)
class LeaveSuperLink:
    """Stop heartbeats, deactivate the node and unregister it (if it registered itself)."""


@dataclass(frozen=True)
class SuperLinkLeft:
    unanswered: int
    """Pulled messages that had no reply when the node left (normally 0)."""
    error: str | None = None


@dataclass(frozen=True)
class GetServedResults:
    """Ask the link for the results it kept (``LinkOptions.keep_results``), oldest first."""


@dataclass(frozen=True)
class ServedResults:
    """The results the link kept, their payloads dropped (timestamps only)."""

    results: tuple[TaskRes, ...]


@dataclass(frozen=True)
class GetLinkStatus:
    """Ask the link for its counters."""


@dataclass(frozen=True)
class LinkStatus:
    """What the link has done: messages pulled and answered, runs, joins, refusals."""

    node_id: int | None
    online: bool
    runs: tuple[int, ...]
    pulled: int
    pushed: int
    error_replies: int
    refused: int
    dropped_run_ended: int
    pending: int
    joins: int
    installs: int
    heartbeats: int
    overhead_ms: tuple[float, ...] = ()
    """Per recent message: pull to reply stored, minus the ClientApp's own time (milliseconds)."""
