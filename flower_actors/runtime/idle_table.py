"""The table of a TCP transport's idle connections, and the wait on them and a pass's other sockets.

``IdleTable`` replaces Thespian's plain dict ``_openSockets`` (see
``tcp_loop``): every change Thespian makes to it registers or unregisters
the socket with one ``poll`` object, so a pass of the loop waits on its idle
connections without listing them; ``wait`` adds the pass's few other sockets
for one ``poll(2)``.
"""

from __future__ import annotations

import errno
import math
import select
from typing import Any

__all__ = ["IdleTable", "wait"]


class IdleTable(dict[Any, Any]):
    """Thespian's table of idle connections (``_openSockets``) that keeps a ``poll`` object of them up to date.

    Every change Thespian makes to the table (``[k] = v``, ``del``, ``pop``)
    registers or unregisters the socket's descriptor at once, so a pass of
    the loop registers only the few other descriptors it waits on. The
    table also lists the connections a pass removed or replaced
    (``removed``): Thespian's step visits those.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.poller = select.poll()
        self.by_fd: dict[int, Any] = {}  # descriptor -> the idle connection registered for it
        self.removed: list[Any] = []  # connections removed or replaced since the pass began
        self.closed_seen = False  # a connection whose socket was already closed was added
        self.pass_no = 0  # passes of the loop that waited on this table
        for key, idle in dict(*args, **kwargs).items():
            self[key] = idle

    def _watch(self, idle: Any) -> None:
        try:
            fd = idle.socket.fileno()
        except (AttributeError, OSError):
            fd = -1
        if fd < 0:
            self.closed_seen = True
            return
        self.poller.register(fd, select.POLLIN)
        self.by_fd[fd] = idle
        idle._fa_fd = fd
        idle._fa_pass = self.pass_no

    def _forget(self, idle: Any) -> None:
        self.removed.append(idle)
        fd = getattr(idle, "_fa_fd", -1)
        if self.by_fd.get(fd) is idle:
            del self.by_fd[fd]
            self.poller.unregister(fd)

    def resync(self) -> None:
        """Register again from the table itself (a socket may have been closed while in it)."""
        self.poller = select.poll()
        self.by_fd = {}
        self.closed_seen = False
        for idle in self.values():
            self._watch(idle)

    def __setitem__(self, key: Any, idle: Any) -> None:
        old = self.get(key)
        super().__setitem__(key, idle)
        if old is not None and old is not idle:
            self._forget(old)
        if old is not idle:
            self._watch(idle)

    def __delitem__(self, key: Any) -> None:
        idle = self[key]
        super().__delitem__(key)
        self._forget(idle)

    def pop(self, key: Any, *default: Any) -> Any:
        if key not in self:
            return super().pop(key, *default)
        idle = super().pop(key)
        self._forget(idle)
        return idle

    def popitem(self) -> tuple[Any, Any]:
        key, idle = super().popitem()
        self._forget(idle)
        return key, idle

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, idle in dict(*args, **kwargs).items():
            self[key] = idle

    def clear(self) -> None:
        for key in list(self):
            del self[key]


_POLL_MASK = (0, select.POLLIN, select.POLLOUT, select.POLLIN | select.POLLOUT)


def wait(table: IdleTable, others: list[int], wsend: list[int], delay: float | None) -> tuple[list[int], list[int]]:
    """poll(2) on the idle connections (registered in ``table``) and ``others`` (read) and ``wsend`` (write).

    Raises as Thespian's selector would: ``ValueError`` for a negative
    descriptor, ``OSError(EBADF)`` for one that is not open.
    """
    from thespian.system.transport import TCPTransport as tcp

    read, write = tcp.selectors.EVENT_READ, tcp.selectors.EVENT_WRITE
    wanted: dict[int, int] = {}
    for fd in others:
        wanted[fd] = wanted.get(fd, 0) | read
    for fd in wsend:
        wanted[fd] = wanted.get(fd, 0) | write
    poller, idle = table.poller, table.by_fd
    done: list[int] = []
    try:
        for fd, events in wanted.items():
            if fd < 0:
                raise ValueError(f"Invalid file descriptor: {fd!r}")
            poller.register(fd, _POLL_MASK[(events | (read if fd in idle else 0)) & 3])
            done.append(fd)
        happened = poller.poll(None if delay is None else max(0, math.ceil(delay * 1000)))
    finally:
        for fd in done:
            if fd in idle:
                poller.register(fd, select.POLLIN)
            else:
                poller.unregister(fd)
    rrecv: list[int] = []
    rsend: list[int] = []
    for fd, bits in happened:
        if bits & select.POLLNVAL:
            raise OSError(errno.EBADF, f"file descriptor {fd} is not open")
        events = (write if bits & ~select.POLLIN else 0) | (read if bits & ~select.POLLOUT else 0)
        mask = wanted.get(fd, 0) | (read if fd in idle else 0)
        if events & mask & read:
            rrecv.append(fd)
        if events & mask & write:
            rsend.append(fd)
    return rrecv, rsend
