"""The one reader of ``/proc``: process state, session, memory, CPU time, page faults and sockets."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "ProcStat",
    "SocketEntry",
    "cpu_ms",
    "descendants",
    "listening_processes",
    "memory_kb",
    "pid_exists",
    "process_alive",
    "pss_kb",
    "read_stat",
    "session_processes",
    "socket_inodes",
    "socket_table",
]


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` this package reads."""

    state: str
    """``R``, ``S``, ``D``, ``Z`` (zombie), ``X`` (dead), ..."""
    ppid: int
    session: int
    minor_faults: int
    utime: int = 0
    """User CPU time, in clock ticks."""
    stime: int = 0
    """System CPU time, in clock ticks."""


def read_stat(pid: int) -> ProcStat | None:
    """``pid``'s stat fields, or ``None`` if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()  # the command name may hold spaces and parentheses
    except OSError:
        return None
    try:  # after the name: state ppid pgrp session tty_nr tpgid flags minflt ...
        return ProcStat(
            fields[0].decode(), int(fields[1]), int(fields[3]), int(fields[7]), int(fields[11]), int(fields[12])
        )
    except (IndexError, ValueError):
        return None


def descendants(pid: int) -> list[int]:
    """Pids of every live process below ``pid``, by parent pid."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None and stat.state not in ("Z", "X"):
                children.setdefault(stat.ppid, []).append(int(entry))
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


@dataclass(frozen=True)
class SocketEntry:
    """A row of ``/proc/net/{tcp,tcp6,udp,udp6}``."""

    table: str
    """``tcp``, ``tcp6``, ``udp`` or ``udp6``."""
    local: str
    """Hex ``address:port`` as the kernel writes it."""
    remote: str
    state: str
    """``0A`` is a listening TCP socket."""
    inode: int


def socket_table(tables: tuple[str, ...] = ("tcp", "tcp6")) -> list[SocketEntry]:
    """The sockets of this network namespace in ``tables`` (a table that cannot be read is skipped)."""
    entries = []
    for table in tables:
        try:
            with open(f"/proc/net/{table}") as f:
                lines = f.readlines()[1:]  # after the header
        except OSError:
            continue
        for line in lines:  # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            fields = line.split()
            if len(fields) > 9 and fields[9].isdigit():
                entries.append(SocketEntry(table, fields[1], fields[2], fields[3], int(fields[9])))
    return entries


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets ``pid`` holds (none if it is gone or not this user's)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def listening_processes(port: int) -> list[int]:
    """Pids of this user's processes with a TCP socket listening on ``port`` (IPv4 or IPv6, any address)."""
    listening = {e.inode for e in socket_table() if e.state == "0A" and int(e.local.rpartition(":")[2], 16) == port}
    if not listening:
        return []
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and socket_inodes(int(entry)) & listening]


def pid_exists(pid: int) -> bool:
    """Whether any process, a zombie included, has this pid."""
    return os.path.exists(f"/proc/{pid}")


def process_alive(pid: int) -> bool:
    """False if ``pid`` has exited (a zombie not yet reaped counts as exited)."""
    stat = read_stat(pid)
    return stat is not None and stat.state not in ("Z", "X")


def session_processes(session_id: int) -> list[int]:
    """Pids of the live (non-zombie) processes in ``session_id``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None and stat.state != "Z" and stat.session == session_id:
                pids.append(int(entry))
    return pids


def memory_kb(pid: int) -> dict[str, int]:
    """``{"rss_kb", "pss_kb", "uss_kb"}`` of ``pid`` (0 where unknown), from ``smaps_rollup``.

    USS (private pages) is what a leak grows; PSS also moves when processes
    sharing pages with ``pid`` start or end.
    """
    out = {"rss_kb": 0, "pss_kb": 0, "uss_kb": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                name = line.partition(":")[0]
                if name in ("Rss", "Pss"):
                    out[f"{name.lower()}_kb"] = int(line.split()[1])
                elif name in ("Private_Clean", "Private_Dirty"):
                    out["uss_kb"] += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return out


def pss_kb(pid: int) -> int:
    """Proportional set size of ``pid`` in KiB (0 if unknown)."""
    return memory_kb(pid)["pss_kb"]


def cpu_ms(pid: int) -> float | None:
    """CPU time ``pid`` has run so far, in milliseconds (``/proc/<pid>/schedstat``)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return None
