"""The table of a TCP transport's idle connections, and the wait on them and a pass's other sockets.

``IdleTable`` replaces Thespian's plain dict ``_openSockets`` (see
``tcp_loop``): every change Thespian makes to it registers or unregisters
the socket with one ``epoll`` object, so a pass of the loop waits on its idle
connections without listing them, and the wait costs no more for 1,000 of
them than for 3 (``poll(2)`` scanned each: 47 us a pass at 1,000); ``wait``
adds the pass's few other sockets for the one ``epoll_wait``.

A socket stays registered as long as some pass waits on it, whatever role it
plays: the listening socket, a connection that left the table to carry a
message and wait for its acknowledgement, or one that came back. Registering
and unregistering them around every wait cost ~11 ``epoll_ctl`` calls per
message exchanged, more than the message itself on a machine where a system
call costs microseconds. A registration whose socket may have closed under it
(its number now names another socket, or unregistering it failed) makes the
next wait rebuild the ``epoll`` object from scratch, so it never reports
events of a socket that is gone.
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
        # descriptor -> (socket, epoll mask) registered outside the table: for passes, or having just left it
        self.kept: dict[int, tuple[Any, int]] = {}
        self.stale = False  # a registration may have outlived its socket: rebuild the epoll before the next wait
        self.removed: list[Any] = []  # connections removed or replaced since the pass began
        self.closed_seen = False  # a connection whose socket was already closed was added
        self.pass_no = 0  # passes of the loop that waited on this table
        for key, idle in dict(*args, **kwargs).items():
            self[key] = idle

    def _watch(self, idle: Any) -> None:
        try:
            sock = idle.socket
            fd = sock.fileno()
        except (AttributeError, OSError):
            fd = -1
        if fd < 0 or self.pid != os.getpid():
            self.closed_seen = True
            return
        held, mask = self.kept.pop(fd, (None, 0))
        try:
            if held is sock:
                if mask != select.EPOLLIN:
                    self.poller.modify(fd, select.EPOLLIN)
            else:
                if held is not None:  # another socket had this number: its registration may outlive it
                    self.stale = True
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
        held = self.by_fd.get(fd)
        if held is not None and held is idle:
            del self.by_fd[fd]
            if self.pid == os.getpid():  # still registered: the next wait keeps it if it waits on the socket
                self.kept[fd] = (held.socket, select.EPOLLIN)

    def resync(self) -> None:
        """Register again from the table itself (a socket may have been closed while in it)."""
        if self.pid == os.getpid():
            self.poller.close()
            self.poller = select.epoll()
        self.by_fd = {}
        self.kept = {}
        self.stale = False
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


def _descriptor(item: Any) -> tuple[int, Any]:
    """(descriptor, socket) of a socket, or (descriptor, None) of a plain descriptor."""
    if isinstance(item, int):
        return item, None
    return item.fileno(), item


def wait(table: IdleTable, reads: list[Any], writes: list[Any], delay: float | None) -> tuple[list[int], list[int]]:
    """``epoll_wait`` on the idle connections (registered in ``table``), ``reads`` and ``writes``.

    ``reads`` and ``writes`` hold sockets, which stay registered for the
    next waits that want them alike, or plain descriptors, registered for
    this wait only. Returns the descriptors readable and writable. Raises as
    Thespian's selector would: ``ValueError`` for a negative descriptor,
    ``OSError(EBADF)`` for one that is not open (an idle one too, which
    ``epoll`` would otherwise have dropped without a word).
    """
    read, write = selectors.EVENT_READ, selectors.EVENT_WRITE  # what Thespian's loop reads events as
    wanted: dict[int, list[Any]] = {}  # descriptor -> [socket or None, selector events]
    for items, event in ((reads, read), (writes, write)):
        for item in items:
            fd, sock = _descriptor(item)
            if fd < 0:
                raise ValueError(f"Invalid file descriptor: {fd!r}")
            entry = wanted.setdefault(fd, [sock, 0])
            entry[1] |= event
    if table.stale or any(
        table.kept.get(fd, (sock, 0))[0] is not sock for fd, (sock, _) in wanted.items() if sock is not None
    ):
        table.resync()  # a registration may name a socket that is gone: start afresh
    poller, idle = table.poller, table.by_fd
    added: list[int] = []
    modified: list[int] = []
    try:
        _keep_only(table, wanted)
        for fd, (sock, events) in wanted.items():
            if fd in idle:
                try:
                    poller.modify(fd, _EPOLL_MASK[(events | read) & 3])
                except OSError:
                    raise OSError(errno.EBADF, f"file descriptor {fd} is not open") from None
                modified.append(fd)
            elif sock is None:
                poller.register(fd, _EPOLL_MASK[events & 3])
                added.append(fd)
            else:
                _keep(table, fd, sock, _EPOLL_MASK[events & 3])
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
        mask = wanted[fd][1] if fd in wanted else (read if fd in idle else 0)
        if events & mask & read:
            rrecv.append(fd)
        if events & mask & write:
            rsend.append(fd)
    return rrecv, rsend


def _keep_only(table: IdleTable, wanted: dict[int, list[Any]]) -> None:
    """Unregister what this wait does not want; one that cannot be was closed: rebuild at the next wait."""
    for fd in [fd for fd in table.kept if fd not in wanted or wanted[fd][0] is None]:
        del table.kept[fd]
        try:
            table.poller.unregister(fd)
        except OSError:
            table.stale = True


def _keep(table: IdleTable, fd: int, sock: Any, mask: int) -> None:
    """Keep ``sock`` registered under ``fd`` with ``mask`` (no system call if it already is)."""
    held, current = table.kept.pop(fd, (None, 0))
    try:
        if held is None:
            try:
                table.poller.register(fd, mask)
            except FileExistsError:
                table.poller.modify(fd, mask)
        elif current != mask:
            table.poller.modify(fd, mask)
    except OSError:
        raise OSError(errno.EBADF, f"file descriptor {fd} is not open") from None
    table.kept[fd] = (sock, mask)
