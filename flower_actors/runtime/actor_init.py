"""Actors created without inspecting their class's ``__init__`` in every new process.

Thespian creates each actor through ``withPossibleInitArgs.create``, which
passes ``capabilities`` and ``requirements`` only if ``__init__`` names
them. To learn the names, Thespian 4.0.1 asks ``inspect.signature``, then
reads each parameter's ``.name`` from the mapping's keys (strings), fails,
tries ``inspect.getargspec`` under a ``warnings`` filter (gone in Python
3.11), fails again, and settles on ``inspect.getfullargspec(...).args``:
three inspections and a warnings context in every actor process it starts.
In a new WorkloadClient that ran ~25 functions of ``inspect`` and
``warnings`` for nothing else, and each page they touched is a
copy-on-write fault: ~50 faults and 0.2 MB of private memory per process.

``cache_init_arguments()`` makes ``create`` compute the same names once per
``__init__`` and remember them; ``remember_init_arguments(cls)`` computes
them ahead, in a process that forks actors of ``cls`` (``create_with``
does), so its children find them computed. An ``__init__`` whose names
cannot be read is created with no arguments, as Thespian does.

The wrapper replaces ``create`` only when its source is the one this was
written for (``WRAPPED``); otherwise Thespian's own stays, and nothing but
speed is lost.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from .fingerprint import fingerprint

__all__ = ["WRAPPED", "cache_init_arguments", "init_argument_names", "installed", "remember_init_arguments"]

log = logging.getLogger(__name__)

WRAPPED = "5279370e2df39baa973869556aa15064e55f8bcd1ea8d85a90a35b315fee0f8f"
"""SHA-256 of the source of Thespian 4.0.1's ``withPossibleInitArgs.create``."""

_names: dict[Any, tuple[str, ...] | None] = {}
"""``__init__`` -> the argument names Thespian may pass it (``None``: create with no arguments)."""


def init_argument_names(actor_class: type) -> tuple[str, ...] | None:
    """The names of ``actor_class.__init__``'s positional arguments, as Thespian 4.0.1 reads them (cached).

    ``None`` when they cannot be read: Thespian then creates the actor with no arguments.
    """
    init = getattr(actor_class, "__init__")  # noqa: B009  (what Thespian reads: klass.__init__)
    try:
        return _names[init]
    except KeyError:
        pass
    except TypeError:  # an unhashable __init__: nothing to remember it by
        return _read_names(init)
    names = _names[init] = _read_names(init)
    return names


def _read_names(init: Any) -> tuple[str, ...] | None:
    try:
        return tuple(inspect.getfullargspec(init).args)
    except (ValueError, NameError, AttributeError):
        return None


def remember_init_arguments(actor_class: type) -> None:
    """Compute ``actor_class``'s argument names now, so that processes forked from here find them."""
    try:
        init_argument_names(actor_class)
    except Exception as exc:  # Thespian's create will meet the same error, and report it where it belongs
        log.debug("cannot read the arguments of %s.__init__: %s", actor_class.__name__, exc)


def installed() -> bool:
    """Whether Thespian creates actors with the remembered argument names."""
    from thespian.system.utilis import withPossibleInitArgs

    return getattr(withPossibleInitArgs.create, "_flower_actors", False)


def cache_init_arguments() -> bool:
    """Make Thespian's actor creation remember each ``__init__``'s argument names (idempotent).

    Returns whether it is installed: ``False`` when Thespian's ``create`` is not the one this was written for.
    """
    from thespian.system.utilis import withPossibleInitArgs

    if installed():
        return True
    if fingerprint(withPossibleInitArgs.create) != WRAPPED:
        log.info("Thespian's withPossibleInitArgs.create is not 4.0.1's: actors' __init__ inspected each time")
        return False

    def create(self: Any, klass: type) -> Any:
        names = init_argument_names(klass)
        if names is None:
            return klass()
        return klass(**{name: self.kwargs[name] for name in names if name in self.kwargs})

    create._flower_actors = True  # type: ignore[attr-defined]
    create.__doc__ = withPossibleInitArgs.create.__doc__
    create.__wrapped__ = withPossibleInitArgs.create  # type: ignore[attr-defined]
    withPossibleInitArgs.create = create
    return True
