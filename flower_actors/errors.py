"""Every exception flower_actors raises, and the error kinds carried by results.

Exceptions a program can catch::

    FlowerActorsError
     ├── ConfigError            a configuration value is invalid (also a ValueError)
     ├── AppLoadError           an app reference cannot be imported or built
     ├── BadContent             a task's or result's content cannot be pickled or unpickled (also a ValueError)
     ├── UnknownMessageType     an app has no handler for a task's message type (also a LookupError)
     ├── SystemStartError       the actor system could not be started
     ├── NodeTimeout            a node or server did not answer in time (also a TimeoutError)
     ├── TaskRejected           the server refused submitted tasks
     ├── UnauthenticatedFrame   a frame on the wire was not signed with the system's secret
     ├── ThespianIncompatible   the installed Thespian lacks an internal this package relies on
     ├── FleetError             a Fleet API call to a Flower SuperLink failed
     │    ├── RunEnded              the run is over (HTTP 403)
     │    ├── NodeUnknown           the SuperLink does not know this node (HTTP 401)
     │    ├── SuperLinkRefused      the request was refused (another HTTP error)
     │    └── SuperLinkUnreachable  no answer: retry later
     │         └── SuperLinkTLSError    no TLS session (untrusted certificate, or plain HTTP on one side)
     └── FabError               a Flower app bundle could not be installed

Errors that happen while a task is handled never raise in the caller: they
come back as a ``TaskRes`` whose ``error.kind`` is one of ``ErrorKind``.
"""

from __future__ import annotations

import enum

__all__ = [
    "AppLoadError",
    "BadContent",
    "ConfigError",
    "ErrorKind",
    "FabError",
    "FleetError",
    "FlowerActorsError",
    "NodeTimeout",
    "NodeUnknown",
    "RunEnded",
    "SuperLinkRefused",
    "SuperLinkTLSError",
    "SuperLinkUnreachable",
    "SystemStartError",
    "TaskRejected",
    "ThespianIncompatible",
    "UnauthenticatedFrame",
    "UnknownMessageType",
]


class FlowerActorsError(Exception):
    """Base of every exception this package raises."""


class ConfigError(FlowerActorsError, ValueError):
    """A configuration value is invalid."""


class AppLoadError(FlowerActorsError):
    """An app reference (``"package.module:Name"``) cannot be loaded."""


class BadContent(FlowerActorsError, ValueError):
    """A task's or result's content cannot be pickled or unpickled."""


class UnknownMessageType(FlowerActorsError, LookupError):
    """The app has no handler for a task's ``message_type``."""


class SystemStartError(FlowerActorsError):
    """The actor system, the server or a node could not be started."""


class NodeTimeout(FlowerActorsError, TimeoutError):
    """A node or the server did not answer in time."""


class TaskRejected(FlowerActorsError):
    """The server refused some submitted tasks; the others were queued."""

    def __init__(self, accepted: list[str], rejected: list[tuple[str, str]]) -> None:
        self.accepted = accepted
        self.rejected = rejected
        first_id, first_reason = rejected[0]
        super().__init__(f"server refused {len(rejected)} task(s), e.g. {first_id}: {first_reason}")


class UnauthenticatedFrame(FlowerActorsError):
    """A frame's HMAC tag did not match: it was not sent by one of the system's processes."""


class ThespianIncompatible(FlowerActorsError):
    """The installed Thespian lacks an internal this package relies on (see ``runtime.thespian_compat``)."""


class ErrorKind(enum.StrEnum):
    """The ``kind`` values of a ``TaskError``: short names a user can act on (each equal to its string)."""

    HANDLER_ERROR = "HandlerError"
    """The user's handler raised; the workload keeps its state."""
    UNKNOWN_MESSAGE_TYPE = "UnknownMessageType"
    """The workload's app has no handler for the task's ``message_type``."""
    APP_LOAD_ERROR = "AppLoadError"
    """The workload's app could not be imported or instantiated."""
    UNPICKLABLE_RESULT = "UnpicklableResult"
    """The handler returned a value that cannot be sent between processes (or is over ``max_content_bytes``)."""
    WORKLOAD_CLIENT_DIED = "WorkloadClientDied"
    """The process running the workload's handler exited or was killed."""
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    """The handler ran past the task's deadline and its process was killed."""
    UNKNOWN_WORKLOAD = "UnknownWorkload"
    """No app is registered for the task's workload and the node has no default."""
    BAD_TASK = "BadTask"
    """The task itself is malformed (missing or wrong-typed fields)."""
    NODE_SHUTTING_DOWN = "NodeShuttingDown"
    """The node stopped before the task could run."""
    WORKLOAD_STOPPED = "WorkloadStopped"
    """The workload was stopped before the task could run."""


class FleetError(FlowerActorsError):
    """A Fleet API call to a Flower SuperLink failed; ``code`` is Flower's ``ApiErrorCode`` when it sent one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RunEnded(FleetError):
    """The run is no longer RUNNING (HTTP 403): its messages need no reply and its client can stop."""


class NodeUnknown(FleetError):
    """The SuperLink does not know this node (HTTP 401), as after a restart with in-memory state."""


class SuperLinkUnreachable(FleetError):
    """No answer from the SuperLink (connection refused, timeout, 502/503/504): retry later."""


class SuperLinkRefused(FleetError):
    """The SuperLink refused the request (another HTTP error)."""


class SuperLinkTLSError(SuperLinkUnreachable):
    """No TLS session with the SuperLink: its certificate is not trusted, or one side speaks plain HTTP.

    Joining refuses at once (retrying cannot help); once joined it counts as
    unreachable, so replies wait and calls are retried.
    """


class FabError(FlowerActorsError):
    """A Flower app bundle (FAB) could not be installed or read."""
