"""The task messages: ``Task``, ``TaskIns``, ``TaskRes`` and ``TaskError``.

Every message is a frozen, picklable dataclass with a class name unique to
this package (Thespian dispatches on the class name). Times are wall-clock
seconds (``time.time()``), comparable across the processes of one host.

A task's content travels as pickled bytes (``payload``) and is unpickled
only where it is used (``.content``): in the WorkloadClient and the driver.
The LeadClient, the Sender and the server never unpickle user objects, so
they never import user code, and content that cannot be unpickled fails one
task, not a whole batch.
"""

from __future__ import annotations

import dataclasses
import pickle
import time
import traceback as traceback_module
from collections import deque
from dataclasses import dataclass
from typing import Any

from .errors import BadContent
from .ids import new_id

__all__ = [
    "BadContent",
    "NodeId",
    "ShortRepr",
    "Task",
    "TaskError",
    "TaskIns",
    "TaskRes",
    "WorkloadId",
    "describe_exception",
    "dump_content",
    "load_content",
    "new_id",
    "safe_text",
    "take_batch",
    "task_ins_problem",
    "type_name",
]

WorkloadId = int | str
"""Identifies a workload (Flower later called it ``run_id``)."""
NodeId = int | str
"""Identifies a node: the device one LeadClient serves."""


MAX_ERROR_TEXT = 4000
"""Longest error message or traceback a ``TaskError`` carries (longer text is cut in the middle)."""


def safe_text(value: object, limit: int = MAX_ERROR_TEXT) -> str:
    """``str(value)`` as a plain ``str`` of at most ``limit`` characters, whatever ``value`` does.

    User objects may raise in ``__str__``, return a non-``str``, or a ``str``
    subclass that another process cannot unpickle: none of that may cost a
    task its answer.
    """
    try:
        text = str(value)
        text = str.__str__(text) if isinstance(text, str) else "<__str__ returned a non-str>"
    except BaseException:  # a user's __str__ may raise anything, SystemExit included
        try:
            text = f"<{type_name(value)} object: __str__ failed>"
        except BaseException:  # pragma: no cover - type_name never raises
            text = "<unprintable object>"
    if len(text) > limit:
        half = limit // 2
        text = f"{text[:half]} ... [{len(text) - limit} characters cut] ... {text[-half:]}"
    return text


def type_name(value: object) -> str:
    """The name of ``value``'s class as a plain ``str`` (never raises)."""
    try:
        name = type(value).__name__
        return str.__str__(name) if isinstance(name, str) else "<unnamed type>"
    except BaseException:  # pragma: no cover - a metaclass that breaks __name__
        return "<unnamed type>"


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"`` for ``exc`` (never raises)."""
    text = safe_text(exc)
    return f"{type_name(exc)}: {text}" if text else type_name(exc)


def dump_content(content: Any) -> bytes:
    """Pickle ``content`` for a task or a result; raises ``BadContent``.

    Any exception of pickling becomes ``BadContent``, ``SystemExit`` from a
    user's ``__reduce__`` included; only ``KeyboardInterrupt`` passes through.
    """
    try:
        return pickle.dumps(content, protocol=pickle.HIGHEST_PROTOCOL)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise BadContent(f"content of type {type_name(content)} cannot be pickled: {describe_exception(exc)}") from None


def load_content(payload: bytes | None) -> Any:
    """Unpickle a payload made by ``dump_content``; raises ``BadContent``."""
    if payload is None:
        return None
    if not isinstance(payload, (bytes, bytearray)):
        raise BadContent(f"payload must be bytes, got {type(payload).__name__}")
    try:
        return pickle.loads(payload)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a user's __setstate__ may raise anything
        raise BadContent(f"content cannot be unpickled: {describe_exception(exc)}") from None


class ShortRepr:
    """Mixin for dataclass messages: a repr that counts collections instead of listing them.

    Thespian formats every message it sends for its debug log, so a message
    that carries thousands of tasks must not print them (use with
    ``@dataclass(repr=False)``).
    """

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, (tuple, list, bytes, dict)):
                parts.append(f"{len(value)} {f.name}")
            elif value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) < 40):
                parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class _Content:
    """Mixin: ``.content`` unpickles ``payload`` once and caches it (the cache is never pickled)."""

    payload: bytes | None

    @property
    def content(self) -> Any:
        cache = self.__dict__.get("_content")
        if cache is None:
            cache = (load_content(self.payload),)
            object.__setattr__(self, "_content", cache)
        return cache[0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__  # pickle only reads it: copied only to leave the cache out
        return {k: v for k, v in state.items() if k != "_content"} if "_content" in state else state

    def _copy_with(self, changes: dict[str, Any]) -> Any:
        """A copy with ``changes`` (field -> value): what ``dataclasses.replace`` makes for these messages, which
        have no ``__post_init__`` nor fields outside ``__init__``, in a quarter of its time (it is done to every
        task and result that passes through a node)."""
        copy = object.__new__(type(self))
        state = copy.__dict__
        state.update(self.__dict__)
        state.pop("_content", None)
        state.update(changes)
        return copy


@dataclass(frozen=True)
class Task:
    """The FED's payload: which workload, what kind of message, and its content."""

    workload_id: WorkloadId
    message_type: str
    content: Any


@dataclass(frozen=True)
class TaskError:
    """Why a task produced no result.

    ``kind`` is one of ``flower_actors.ErrorKind``; ``exception_type`` and
    ``traceback`` are set when a user handler raised.
    """

    kind: str
    message: str
    exception_type: str = ""
    traceback: str = ""

    @classmethod
    def from_exception(cls, kind: str, exc: BaseException, limit: int = 8) -> TaskError:
        """Describe ``exc`` with a short traceback (the last ``limit`` frames); never raises.

        Nothing of ``exc`` is trusted: its ``__str__``, ``__repr__`` and
        traceback are each read under a guard, so a broken exception still
        gives a ``TaskError`` of plain strings.
        """
        try:
            tb = "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__, limit=-limit))
        except BaseException:  # formatting calls user code (__str__ of the exception)
            tb = f"<traceback of {type_name(exc)} could not be formatted>"
        return cls(kind=kind, message=describe_exception(exc), exception_type=type_name(exc), traceback=safe_text(tb))

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True, repr=False)
class TaskIns(_Content):
    """A task instruction: what a driver asks one node to do for one workload."""

    task_id: str
    """Unique id; the same id pulled twice is handled once."""
    node_id: NodeId
    """The node that must handle it."""
    workload_id: WorkloadId
    """The workload it belongs to; it picks the WorkloadClient."""
    message_type: str
    """Selects the handler (``handle_<message_type>``; empty means ``handle_default``)."""
    payload: bytes
    """The pickled content; read it as ``.content``."""
    created_at: float
    """When the driver created it."""
    deadline_s: float | None = None
    """Longest time its handler may run; ``None`` uses the node's setting."""
    pulled_at: float | None = None
    """When the LeadClient received it from the server."""

    @classmethod
    def create(
        cls,
        workload_id: WorkloadId,
        content: Any,
        *,
        node_id: NodeId = 0,
        message_type: str = "",
        deadline_s: float | None = None,
        task_id: str | None = None,
    ) -> TaskIns:
        """Build a new task instruction with a fresh id, stamped now.

        ``content`` is any picklable value; ``BadContent`` says why not.
        """
        return cls(
            task_id=task_id or new_id(),
            node_id=node_id,
            workload_id=workload_id,
            message_type=message_type,
            payload=dump_content(content),
            created_at=time.time(),
            deadline_s=deadline_s,
        )

    @property
    def task(self) -> Task:
        """The FED's ``Task`` view of this instruction."""
        return Task(self.workload_id, self.message_type, self.content)

    def __repr__(self) -> str:  # short: Thespian formats every message it sends for a debug log
        return (
            f"TaskIns({self.task_id}, node={self.node_id!r}, workload={self.workload_id!r}, "
            f"type={self.message_type!r}, {len(self.payload)} bytes)"
        )


@dataclass(frozen=True, repr=False)
class TaskRes(_Content):
    """A task result: the handler's return value or the error that replaced it."""

    task_id: str
    """Its own unique id."""
    ins_id: str
    """The ``task_id`` of the ``TaskIns`` it answers."""
    node_id: NodeId
    workload_id: WorkloadId
    message_type: str
    payload: bytes | None = None
    """The pickled return value of the handler (``None`` when ``error`` is set); read it as ``.content``."""
    error: TaskError | None = None
    created_at: float | None = None
    """When the driver created the ``TaskIns``."""
    pulled_at: float | None = None
    """When the LeadClient received the ``TaskIns``."""
    started_at: float | None = None
    """When the handler started (``None`` if it never ran)."""
    finished_at: float | None = None
    """When the handler returned or the error was decided."""
    pushed_at: float | None = None
    """When the Sender first pushed it to the server."""
    stored_at: float | None = None
    """When the server stored it."""
    handler_pid: int | None = None
    """The process that ran the handler."""

    @classmethod
    def answer(
        cls,
        ins: TaskIns,
        *,
        payload: bytes | None = None,
        error: TaskError | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
        handler_pid: int | None = None,
    ) -> TaskRes:
        """Build the result that answers ``ins`` (``payload`` from ``dump_content``), as ``TaskRes(...)`` would
        (a test holds them equal) but without its frozen ``__init__``, a third of the cost of a no-op task."""
        result = object.__new__(cls)
        result.__dict__.update(
            task_id=new_id(),
            ins_id=ins.task_id,
            node_id=ins.node_id,
            workload_id=ins.workload_id,
            message_type=ins.message_type,
            payload=payload,
            error=error,
            created_at=ins.created_at,
            pulled_at=ins.pulled_at,
            started_at=started_at,
            finished_at=finished_at if finished_at is not None else time.time(),
            pushed_at=None,
            stored_at=None,
            handler_pid=handler_pid,
        )
        return result

    @property
    def ok(self) -> bool:
        """True when the handler produced a result."""
        return self.error is None

    @property
    def task(self) -> Task:
        """The FED's ``Task`` view of this result."""
        return Task(self.workload_id, self.message_type, self.content)

    def __repr__(self) -> str:
        outcome = f"error={self.error}" if self.error else f"{len(self.payload or b'')} bytes"
        return f"TaskRes({self.task_id}, answers={self.ins_id}, workload={self.workload_id!r}, {outcome})"

    def stamped(self, **times: float | None) -> TaskRes:
        """Return a copy with the given timing fields set."""
        unknown = set(times) - _TIMING_FIELDS
        if unknown:
            raise TypeError(f"not timing fields: {sorted(unknown)}")
        stamped: TaskRes = self._copy_with(times)
        return stamped


_TIMING_FIELDS = frozenset({"created_at", "pulled_at", "started_at", "finished_at", "pushed_at", "stored_at"})


BATCH_BYTES = 16 * 1024 * 1024
"""Payload bytes after which a batch of tasks or results (a pull, a push, a collect) ends: one message must
stay far below the transport's frame limit of 256 MiB, whatever the number of items."""


def take_batch(queue: deque[Any], max_items: int, max_bytes: int = BATCH_BYTES) -> tuple[Any, ...]:
    """Pop up to ``max_items`` items from the front of ``queue``, ending once their payloads reach ``max_bytes``.

    Takes at least one item when ``queue`` is not empty (a single item may be larger).
    """
    taken: list[Any] = []
    size = 0
    while queue and len(taken) < max(1, max_items) and (not taken or size < max_bytes):
        item = queue.popleft()
        payload = getattr(item, "payload", None)
        size += len(payload) if isinstance(payload, (bytes, bytearray)) else 0
        taken.append(item)
    return tuple(taken)


def task_ins_problem(task: Any) -> str | None:
    """Why ``task`` cannot be handled, or ``None`` when it is a well-formed ``TaskIns``."""
    if not isinstance(task, TaskIns):
        return f"expected a TaskIns, got {type(task).__name__}"
    task_id = getattr(task, "task_id", None)
    if not isinstance(task_id, str) or not task_id:
        return "task_id must be a non-empty str"
    for name in ("node_id", "workload_id"):
        value = getattr(task, name, None)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return f"{name} must be an int or a str, got {type(value).__name__}"
    message_type = getattr(task, "message_type", None)
    if not isinstance(message_type, str):
        return f"message_type must be a str, got {type(message_type).__name__}"
    deadline = getattr(task, "deadline_s", None)
    if deadline is not None and (
        isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not deadline > 0
    ):
        return f"deadline_s must be a positive number or None, got {deadline!r}"
    if not isinstance(getattr(task, "payload", None), (bytes, bytearray)):
        return "payload (the pickled content) must be bytes"
    if not isinstance(getattr(task, "created_at", None), (int, float)):
        return "created_at must be a number"
    return None
