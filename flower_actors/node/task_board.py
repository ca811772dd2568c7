"""``TaskBoard``: shared memory where each WorkloadClient shows what it is running.

A busy LeadClient reads its messages late: a ``TasksDone`` may wait in its
socket while a deadline timer fires, and a task it sent may not have
started yet because the child process has had no CPU. To judge a
deadline by facts, the LeadClient creates an anonymous shared ``mmap``
before it forks any WorkloadClient; each child gets a slot and writes
there the sequence number and start time of the task it starts and the
sequence number of the task it finished. Deadlines are then measured
from the real start, and a task that finished is never killed.

Only children forked on this host share the board; elsewhere (slot -1)
the LeadClient falls back to its own clock.
"""

from __future__ import annotations

import mmap
import struct
import time

__all__ = ["TaskBoard"]

_SLOT = struct.Struct("<qdq")  # started seq, started at (wall clock), finished seq


class TaskBoard:
    """Fixed number of slots in memory shared with forked children."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.memory = mmap.mmap(-1, slots * _SLOT.size)  # anonymous and MAP_SHARED: forks see writes
        self.free: list[int] = list(range(slots - 1, -1, -1))

    def allocate(self) -> int:
        """A free slot, reset; -1 when the board is full (deadlines then use the LeadClient's clock)."""
        if not self.free:
            return -1
        slot = self.free.pop()
        _SLOT.pack_into(self.memory, slot * _SLOT.size, 0, 0.0, 0)
        return slot

    def release(self, slot: int) -> None:
        if 0 <= slot < self.slots:
            self.free.append(slot)

    def started(self, slot: int, seq: int) -> None:
        """Child: task ``seq`` starts now."""
        if 0 <= slot < self.slots:
            _SLOT.pack_into(self.memory, slot * _SLOT.size, seq, time.time(), seq - 1)

    def loading(self, slot: int) -> None:
        """Child: it loads its app now, before its first task (read as started 0, finished -1)."""
        if 0 <= slot < self.slots:
            _SLOT.pack_into(self.memory, slot * _SLOT.size, 0, time.time(), -1)

    def finished(self, slot: int, seq: int) -> None:
        """Child: task ``seq`` finished."""
        if 0 <= slot < self.slots:
            struct.pack_into("<q", self.memory, slot * _SLOT.size + 16, seq)

    def read(self, slot: int) -> tuple[int, float, int] | None:
        """(started seq, started at, finished seq), or ``None`` for no slot."""
        if not 0 <= slot < self.slots:
            return None
        started, at, finished = _SLOT.unpack_from(self.memory, slot * _SLOT.size)
        return int(started), float(at), int(finished)


CURRENT: TaskBoard | None = None
"""The board of the LeadClient in this process; forked WorkloadClients inherit it."""
