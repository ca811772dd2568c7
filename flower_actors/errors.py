"""Exceptions raised by flower_actors, and the error kinds carried by results.

Exceptions a program can catch::

    FlowerActorsError
     ├── ConfigError          a configuration value is invalid
     ├── AppLoadError         an app reference cannot be imported or built
     ├── SystemStartError     the actor system could not be started
     ├── NodeTimeout          a node or server did not answer in time
     └── TaskRejected         the server refused submitted tasks

Errors that happen while a task is handled never raise in the caller: they
come back as a ``TaskRes`` whose ``error.kind`` is one of ``ErrorKind``.
"""

from __future__ import annotations

__all__ = [
    "AppLoadError",
    "ConfigError",
    "ErrorKind",
    "FlowerActorsError",
    "NodeTimeout",
    "SystemStartError",
    "TaskRejected",
]


class FlowerActorsError(Exception):
    """Base of every exception this package raises."""


class ConfigError(FlowerActorsError, ValueError):
    """A configuration value is invalid."""


class AppLoadError(FlowerActorsError):
    """An app reference (``"package.module:Name"``) cannot be loaded."""


class SystemStartError(FlowerActorsError):
    """The actor system, the server or a node could not be started."""


class NodeTimeout(FlowerActorsError, TimeoutError):
    """A node or the server did not answer in time."""


class TaskRejected(FlowerActorsError):
    """The server refused some submitted tasks; the others were queued."""

    def __init__(self, accepted: "list[str]", rejected: "list[tuple[str, str]]") -> None:
        self.accepted = accepted
        self.rejected = rejected
        first_id, first_reason = rejected[0]
        super().__init__(f"server refused {len(rejected)} task(s), e.g. {first_id}: {first_reason}")


class ErrorKind:
    """The ``kind`` values of a ``TaskError``: short names a user can act on."""

    HANDLER_ERROR = "HandlerError"
    """The user's handler raised; the workload keeps its state."""
    UNKNOWN_MESSAGE_TYPE = "UnknownMessageType"
    """The workload's app has no handler for the task's ``message_type``."""
    APP_LOAD_ERROR = "AppLoadError"
    """The workload's app could not be imported or instantiated."""
    UNPICKLABLE_RESULT = "UnpicklableResult"
    """The handler returned a value that cannot be sent between processes."""
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
