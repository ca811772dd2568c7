"""User apps: the ``Client`` base class and loading an app inside a WorkloadClient.

An app is named by ``"package.module:Name"``. If ``Name`` is a class, the
WorkloadClient makes one instance per workload, ``Name(context)``, and calls
its ``handle(task)`` for each task: the instance's attributes are the
workload's state. If ``Name`` is a function, it is called as ``Name(task)``.
Subclass ``Client`` to dispatch on ``message_type``::

    class MyClient(Client):
        def handle_train(self, task: TaskIns) -> Any: ...
        def handle_evaluate(self, task: TaskIns) -> Any: ...
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import AppSpec
from .errors import AppLoadError, UnknownMessageType
from .messages import NodeId, TaskIns, WorkloadId, describe_exception

__all__ = ["Client", "UnknownMessageType", "WorkloadContext", "load_app"]


@dataclass(frozen=True)
class WorkloadContext:
    """What an app instance knows about where it runs."""

    workload_id: WorkloadId
    node_id: NodeId
    config: Mapping[str, Any] = field(default_factory=dict)
    """The ``AppSpec.config`` the app was registered with."""


class Client:
    """Base class of a per-workload client: ``handle_<message_type>`` methods.

    A task with an empty ``message_type`` goes to ``handle_default``.
    """

    def __init__(self, context: WorkloadContext) -> None:
        self.context = context

    def handle(self, task: TaskIns) -> Any:
        """Run the handler for ``task.message_type`` and return the result content."""
        name = "handle_" + (task.message_type or "default")
        method = getattr(self, name, None) if name.isidentifier() else None
        if method is None or not callable(method):
            raise UnknownMessageType(
                f"{type(self).__name__} has no handler for message type {task.message_type!r} (define {name}())"
            )
        return method(task)


def _resolve(ref: str) -> Any:
    module_name, _, qualname = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except BaseException as exc:  # SystemExit at import too; this runs only inside a WorkloadClient
        raise AppLoadError(f"cannot import module {module_name!r} of app {ref!r}: {describe_exception(exc)}") from None
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(f"module {module_name!r} has no attribute {qualname!r} (app {ref!r})") from None
    return obj


def load_app(spec: AppSpec, context: WorkloadContext) -> Callable[[TaskIns], Any]:
    """Import ``spec.ref`` and return the callable that handles one task.

    Raises ``AppLoadError`` with a message a user can act on.
    """
    target: Any = _resolve(spec.ref)
    if inspect.isclass(target):
        factory: Callable[[WorkloadContext], Any] = target
        try:
            instance = factory(context)
        except BaseException as exc:  # SystemExit in __init__ too; this runs only inside a WorkloadClient
            raise AppLoadError(f"app {spec.ref!r} failed in __init__: {describe_exception(exc)}") from None
        handle = getattr(instance, "handle", None)
        if not callable(handle):
            raise AppLoadError(f"app {spec.ref!r} has no handle(task) method (subclass flower_actors.Client)")
        return handle
    if callable(target):
        return target
    raise AppLoadError(f"app {spec.ref!r} is a {type(target).__name__}, not a class or a function")
