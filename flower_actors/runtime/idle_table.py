"""The table of a TCP transport's idle connections, and the wait on them and a pass's other sockets.

``IdleTable`` replaces Thespian's plain dict ``_openSockets`` (see
``tcp_loop``): every change Thespian makes to it registers or unregisters
the socket with one ``epoll`` object, so a pass of the loop waits on its idle
connections without listing them, and the wait costs no more for 1,000 of
them than for 3 (``poll(2)`` scanned each: 47 us a pass at 1,000); ``wait``
adds the pass's few other sockets for the one ``epoll_wait``.
"""

from __future__ import annotations

import errno
import os
import select
import selectors
from typing import Any

__all__ = ["IdleTable", "wait"]


class IdleTable(dict[Any, Any]):
    """Thespian's table of idle connections (``_openSockets``) that keeps an ``epoll`` object of them up to date.

    Every change Thespian makes to the table (``[k] = v``, ``del``, ``pop``)
    registers or unregisters the socket's descriptor at once, so a pass of
    the loop registers only the few other descriptors it waits on. The
    table also lists the connections a pass removed or replaced
    (``removed``): Thespian's step visits those. A process forked from the
    table's own never touches its ``epoll`` (they would share it).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.pid = os.getpid()
        self.poller = select.epoll()
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
        if fd < 0 or self.pid != os.getpid():
            self.closed_seen = True
            return
        try:
            self.poller.register(fd, select.EPOLLIN)
        except FileExistsError:
            self.poller.modify(fd, select.EPOLLIN)
        except OSError:  # closed under the same number: seen as closed at the next resync
            self.closed_seen = True
            return
        self.by_fd[fd] = idle
        idle._fa_fd = fd
        idle._fa_pass = self.pass_no

    def _forget(self, idle: Any) -> None:
        self.removed.append(idle)
        fd = getattr(idle, "_fa_fd", -1)
        if self.by_fd.get(fd) is idle:
            del self.by_fd[fd]
            if self.pid == os.getpid():
                try:
                    self.poller.unregister(fd)
                except OSError:  # closed while in the table: epoll dropped it already
                    pass

    def resync(self) -> None:
        """Register again from the table itself (a socket may have been closed while in it)."""
        if self.pid == os.getpid():
            self.poller.close()
            self.poller = select.epoll()
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


_EPOLL_MASK = (0, select.EPOLLIN, select.EPOLLOUT, select.EPOLLIN | select.EPOLLOUT)


def wait(table: IdleTable, others: list[int], wsend: list[int], delay: float | None) -> tuple[list[int], list[int]]:
    """``epoll_wait`` on the idle connections (registered in ``table``), ``others`` (read) and ``wsend`` (write).

    Raises as Thespian's selector would: ``ValueError`` for a negative
    descriptor, ``OSError(EBADF)`` for one that is not open (an idle one
    too, which ``epoll`` would otherwise have dropped without a word).
    """
    read, write = selectors.EVENT_READ, selectors.EVENT_WRITE  # what Thespian's loop reads events as
    wanted: dict[int, int] = {}
    for fd in others:
        wanted[fd] = wanted.get(fd, 0) | read
    for fd in wsend:
        wanted[fd] = wanted.get(fd, 0) | write
    poller, idle = table.poller, table.by_fd
    added: list[int] = []
    modified: list[int] = []
    try:
        for fd, events in wanted.items():
            if fd < 0:
                raise ValueError(f"Invalid file descriptor: {fd!r}")
            if fd in idle:
                try:
                    poller.modify(fd, _EPOLL_MASK[(events | read) & 3])
                except OSError:
                    raise OSError(errno.EBADF, f"file descriptor {fd} is not open") from None
                modified.append(fd)
            else:
                poller.register(fd, _EPOLL_MASK[events & 3])
                added.append(fd)
        happened = poller.poll(-1 if delay is None else max(0.0, delay))
    finally:
        for fd in added:
            try:
                poller.unregister(fd)
            except OSError:
                pass
        for fd in modified:
            try:
                poller.modify(fd, select.EPOLLIN)
            except OSError:
                pass
    rrecv: list[int] = []
    rsend: list[int] = []
    for fd, bits in happened:
        events = (write if bits & ~select.EPOLLIN else 0) | (read if bits & ~select.EPOLLOUT else 0)
        mask = wanted.get(fd, 0) | (read if fd in idle else 0)
        if events & mask & read:
            rrecv.append(fd)
        if events & mask & write:
            rsend.append(fd)
    return rrecv, rsend
