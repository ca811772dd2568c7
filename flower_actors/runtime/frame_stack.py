"""Keep an actor's hot calls inside one chunk of CPython's frame stack.

Since 3.11 CPython keeps Python frames in chunks of 16 KiB that it maps
with ``mmap`` and unmaps as soon as the last frame in one returns. An actor
process's path from Thespian's loop through a handler to a send and back is
deep enough to cross the end of its first chunk, and it crosses it on every
message: each crossing maps a fresh chunk (zeroed pages, so page faults) and
unmaps it again. Measured on the ``overhead`` burst with processes running
(4,000 tasks over 100 WorkloadClients): about 150 page faults per
WorkloadClient per burst and twice the CPU of the same loop without the
crossings.

``run_in_roomy_chunk`` calls a function from a frame so large that CPython
opens a chunk of 32 KiB for it, leaving ``ROOM_BYTES`` above it for
everything the function calls, and that chunk lives as long as the call.
``steady_actor_stacks`` makes every Thespian actor run its whole life that
way, at the cost of one chunk (32 KiB of address space, about 17 KiB of it
touched) per actor process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["ROOM_BYTES", "run_in_roomy_chunk", "steady_actor_stacks"]

T = TypeVar("T")

_SLOTS = 2100
"""Local variables of the roomy frame: 8 bytes each, just over one 16 KiB chunk, so CPython gives it a chunk of
twice that (it doubles the size until the frame fits)."""
ROOM_BYTES = 32 * 1024 - _SLOTS * 8
"""About how much of its chunk the roomy frame leaves for the calls it makes (some hundred frames)."""


def _make_roomy_caller() -> Callable[..., Any]:
    names = " = ".join(f"_{i}" for i in range(_SLOTS))
    source = f"def roomy(fn, *args):\n    if False:\n        {names} = None\n    return fn(*args)\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<frame_stack>", "exec"), namespace)  # the only way to declare a frame this large
    roomy: Callable[..., Any] = namespace["roomy"]
    return roomy


_roomy = _make_roomy_caller()


def run_in_roomy_chunk(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, with about ``ROOM_BYTES`` of frame stack that no call of it maps or unmaps."""
    result: T = _roomy(fn, *args)
    return result


def steady_actor_stacks() -> None:
    """Run every Thespian actor's message loop (``ActorManager.run``) in a roomy chunk (idempotent)."""
    from thespian.system import actorManager

    from .thespian_compat import _require

    _require(actorManager.ActorManager, "run")
    run = actorManager.ActorManager.run
    if getattr(run, "_flower_actors", False):
        return

    def run_roomy(self: Any) -> Any:
        return run_in_roomy_chunk(run, self)

    run_roomy._flower_actors = True  # type: ignore[attr-defined]
    actorManager.ActorManager.run = run_roomy
