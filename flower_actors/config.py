"""Node configuration: ``NodeConfig`` and ``AppSpec``, validated on creation."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from .errors import ConfigError
from .messages import NodeId, WorkloadId

__all__ = ["AppRef", "AppSpec", "NodeConfig", "app_spec"]


@dataclass(frozen=True)
class AppSpec:
    """Which app serves a workload: an import reference and its configuration.

    ``ref`` is ``"package.module:Name"``. ``Name`` is either a class,
    instantiated once per workload with a ``WorkloadContext`` (its attributes
    are the workload's state), or a function called as ``fn(task)`` for
    every task. ``config`` is handed to the app in ``WorkloadContext.config``.
    """

    ref: str
    config: Mapping[str, Any] = field(default_factory=dict)
    deadline_s: float | None = None
    """Longest a handler of this workload may run (overrides the node's ``task_deadline_s``)."""

    def __post_init__(self) -> None:
        if not isinstance(self.ref, str):
            raise ConfigError(f"app reference must be a str 'package.module:Name', got {type(self.ref).__name__}")
        module, sep, name = self.ref.partition(":")
        if not sep or not _dotted(module) or not _dotted(name):
            raise ConfigError(f"app reference {self.ref!r} must look like 'package.module:Name'")
        if not isinstance(self.config, Mapping):
            raise ConfigError(f"app config must be a mapping, not {type(self.config).__name__}")
        _positive("deadline_s", self.deadline_s, allow_none=True)

    @property
    def module(self) -> str:
        """The module ``ref`` names (imported ahead by the warm pool)."""
        return self.ref.partition(":")[0]


AppRef = str | type | AppSpec | Any
"""An app as a user may give it: a reference string, a class, a function or an ``AppSpec``."""


def app_spec(app: AppRef, config: Mapping[str, Any] | None = None) -> AppSpec:
    """Normalise ``app`` to an ``AppSpec`` without importing any user code.

    Classes and functions become their import reference, so the object is
    loaded again inside the WorkloadClient's process, never in the LeadClient.
    """
    if isinstance(app, AppSpec):
        return app if config is None else AppSpec(app.ref, config, app.deadline_s)
    if isinstance(app, str):
        return AppSpec(app, config or {})
    module = getattr(app, "__module__", None)
    qualname = getattr(app, "__qualname__", None)
    if callable(app) and isinstance(module, str) and isinstance(qualname, str) and _found_at(app, module, qualname):
        return AppSpec(f"{module}:{qualname}", config or {})
    raise ConfigError(
        f"app {app!r} is not importable: give 'package.module:Name', a module-level class or function, or an AppSpec"
    )


def _dotted(name: str) -> bool:
    """Whether ``name`` is a dotted path of identifiers (``a.b.c``)."""
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def _found_at(app: Any, module: str, qualname: str) -> bool:
    """Whether ``module:qualname`` names ``app`` itself, so a WorkloadClient can import it again.

    A lambda, a local class or a function stored under another name has a
    ``__qualname__`` that an import cannot find.
    """
    if not _dotted(module) or not _dotted(qualname):
        return False
    found: Any = sys.modules.get(module)
    if found is None:
        return True  # not imported here (never the case for a live object); the WorkloadClient will say
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is app


def _positive(name: str, value: Any, *, allow_none: bool = False, integer: bool = False) -> None:
    if value is None and allow_none:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value <= 0:
        expected = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{name} must be {expected}{' or None' if allow_none else ''}, got {value!r}")


MAX_CONTENT_LIMIT = 128 * 1024 * 1024
"""Highest ``max_content_bytes``: half the largest frame the transport accepts (``secure_thespian``)."""


@dataclass(frozen=True)
class NodeConfig:
    """Everything a LeadClient needs to serve one node."""

    node_id: NodeId = 0
    """Which node this is; the server hands it only this node's tasks."""
    app: AppRef | None = None
    """Default app for every workload without its own entry in ``workload_apps`` (an ``AppSpec`` once created)."""
    workload_apps: Mapping[WorkloadId, AppRef] = field(default_factory=dict)
    """Per-workload apps (``AppSpec`` once created); more can be registered while the node runs."""
    poll_interval: float = 1.0
    """Seconds between pulls in periodic mode (the FED's once a second)."""
    long_poll: bool = False
    """Pull continuously; the server answers as soon as a task exists."""
    long_poll_wait: float = 5.0
    """Longest time the server holds a long-poll pull before answering empty."""
    max_pull_batch: int = 5000
    """Most tasks taken by one pull. Large batches mean few messages: each WorkloadClient gets all its
    tasks of a pull in one message (BENCHMARKS.md has the effect on throughput)."""
    request_timeout: float = 5.0
    """A pull (beyond ``long_poll_wait``) or a push not answered within this many seconds failed."""
    retry_backoff_max: float = 5.0
    """Longest wait between retries while the server fails (exponential back-off with jitter)."""
    dedupe_window: int = 100_000
    """How many recent task ids are remembered to drop a task pulled twice."""
    task_deadline_s: float | None = None
    """Longest a handler may run before its process is killed (``None``: no limit)."""
    max_workloads: int | None = None
    """Most live WorkloadClients; at the cap the least recently used idle one is stopped."""
    idle_timeout_s: float | None = None
    """Stop a WorkloadClient idle this long (``None``: never)."""
    max_in_flight: int = 10_000
    """Pulled tasks not yet done above which the node stops pulling."""
    max_unpushed: int = 10_000
    """Results waiting in the Sender above which the node stops pulling."""
    warm_pool: int = 4
    """WorkloadClients started ahead of need (default app pre-imported), so a new workload's first task
    does not wait for a process; refilled after use. Each costs about 5 MB (PSS) while it waits."""
    share_imports: bool = True
    """Once a WorkloadClient has imported an app's module, the Spawner imports it too, so later WorkloadClients
    are forked with it loaded and share its memory: the module's top-level code then runs once per node (in
    the Spawner) instead of once per workload. ``False`` imports it afresh in every WorkloadClient."""
    max_content_bytes: int = 64 * 1024 * 1024
    """Largest pickled content: a larger task gets a ``BadTask`` error, a larger result an ``UnpicklableResult``
    (at most 128 MiB: a frame between two actors carries at most 256 MiB)."""

    def __post_init__(self) -> None:
        if not isinstance(self.node_id, (int, str)) or isinstance(self.node_id, bool):
            raise ConfigError(f"node_id must be an int or a str, got {self.node_id!r}")
        if self.app is not None:
            object.__setattr__(self, "app", app_spec(self.app))
        if not isinstance(self.workload_apps, Mapping):
            raise ConfigError("workload_apps must map workload ids to apps")
        object.__setattr__(self, "workload_apps", {w: app_spec(a) for w, a in self.workload_apps.items()})
        _positive("poll_interval", self.poll_interval)
        _positive("long_poll_wait", self.long_poll_wait)
        _positive("request_timeout", self.request_timeout)
        _positive("retry_backoff_max", self.retry_backoff_max)
        _positive("max_pull_batch", self.max_pull_batch, integer=True)
        _positive("dedupe_window", self.dedupe_window, integer=True)
        _positive("task_deadline_s", self.task_deadline_s, allow_none=True)
        _positive("max_workloads", self.max_workloads, allow_none=True, integer=True)
        _positive("idle_timeout_s", self.idle_timeout_s, allow_none=True)
        _positive("max_in_flight", self.max_in_flight, integer=True)
        _positive("max_unpushed", self.max_unpushed, integer=True)
        _positive("max_content_bytes", self.max_content_bytes, integer=True)
        if self.max_content_bytes > MAX_CONTENT_LIMIT:
            raise ConfigError(f"max_content_bytes must be at most {MAX_CONTENT_LIMIT}, got {self.max_content_bytes}")
        if isinstance(self.warm_pool, bool) or not isinstance(self.warm_pool, int) or self.warm_pool < 0:
            raise ConfigError(f"warm_pool must be a non-negative integer, got {self.warm_pool!r}")
        if not isinstance(self.long_poll, bool):
            raise ConfigError(f"long_poll must be True or False, got {self.long_poll!r}")
        if not isinstance(self.share_imports, bool):
            raise ConfigError(f"share_imports must be True or False, got {self.share_imports!r}")

    @property
    def default_app(self) -> AppSpec | None:
        """The default app, normalised."""
        return cast(AppSpec | None, self.app)

    @property
    def workload_specs(self) -> dict[WorkloadId, AppSpec]:
        """The per-workload apps, normalised."""
        return cast(dict[WorkloadId, AppSpec], dict(self.workload_apps))

    def describe(self) -> str:
        """One line of what the node does: mode, apps, limits (the LeadClient logs it at start)."""
        mode = (
            f"long-poll (wait {self.long_poll_wait:g} s)" if self.long_poll else f"pull every {self.poll_interval:g} s"
        )
        default = self.default_app
        apps = f"app {default.ref}" if default else "no default app"
        if self.workload_apps:
            apps += f", {len(self.workload_apps)} workload app(s)"
        limits = [
            f"max {self.max_workloads} workloads" if self.max_workloads else "workloads unlimited",
            f"warm pool {self.warm_pool}",
            f"max in flight {self.max_in_flight}",
            f"task deadline {self.task_deadline_s:g} s" if self.task_deadline_s else "no task deadline",
        ]
        if self.idle_timeout_s:
            limits.append(f"idle timeout {self.idle_timeout_s:g} s")
        return f"{mode}; {apps}; {', '.join(limits)}"
