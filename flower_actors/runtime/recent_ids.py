"""``RecentIds``: a bounded set of the ids seen last, for dropping a second copy of anything."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["RecentIds"]


class RecentIds:
    """The last ``capacity`` ids added; the oldest is forgotten first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._ids: OrderedDict[Hashable, None] = OrderedDict()

    def add(self, item: Hashable) -> bool:
        """Remember ``item``; False if it was already remembered (a second copy)."""
        if item in self._ids:
            return False
        self._ids[item] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)
