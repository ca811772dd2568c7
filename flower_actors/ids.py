"""``new_id``: the ids of tasks and results, unique across processes and hosts without a system call each."""

from __future__ import annotations

import itertools
import os

__all__ = ["new_id"]

_id_prefix = ""
_id_pid = 0  # the process that drew the prefix: a forked child draws its own
_id_count = itertools.count()


def new_id() -> str:
    """Return a fresh, unique task id: 32 hex digits, like a UUID's.

    64 random bits drawn once per process, then a counter: ``uuid4`` built a
    ``UUID`` and asked the kernel for randomness on every call. A forked
    child must never repeat its parent's ids; it notices by its pid (an
    ``os.register_at_fork`` hook instead ran Python in every new process,
    ~24 page faults each).
    """
    global _id_prefix, _id_pid
    pid = os.getpid()
    if pid != _id_pid:
        _id_prefix, _id_pid = os.urandom(8).hex(), pid
    return f"{_id_prefix}{next(_id_count):016x}"
