"""``new_id``: the ids of tasks and results, unique across processes and hosts without a system call each."""

from __future__ import annotations

import itertools
import os

__all__ = ["new_id"]

_id_prefix: str | None = None
_id_count = itertools.count()


def _new_id_prefix() -> None:
    """A forked child draws its own prefix (``os.register_at_fork``): it must never repeat its parent's ids."""
    global _id_prefix
    _id_prefix = None


os.register_at_fork(after_in_child=_new_id_prefix)


def new_id() -> str:
    """Return a fresh, unique task id: 32 hex digits, like a UUID's.

    64 random bits drawn once per process, then a counter: ``uuid4`` asked
    the kernel for randomness on every call, a system call per task and
    result that cost more than the rest of the id on a virtual machine.
    """
    global _id_prefix
    if _id_prefix is None:
        _id_prefix = os.urandom(8).hex()
    return f"{_id_prefix}{next(_id_count):016x}"
