"""Which TCP addresses a set of processes listens on, read from /proc."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable


def _socket_inodes(pids: Iterable[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
        except OSError:
            continue
    return inodes


def _decode(hex_addr: str, v6: bool) -> tuple[str, int]:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if v6:
        raw = b"".join(struct.pack("<I", struct.unpack(">I", raw[i : i + 4])[0]) for i in range(0, 16, 4))
        return socket.inet_ntop(socket.AF_INET6, raw), int(port, 16)
    return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)


def listening_addresses(pids: Iterable[int]) -> set[tuple[str, int]]:
    """(host, port) of every listening TCP socket held by ``pids``."""
    inodes = _socket_inodes(pids)
    found = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[9]) in inodes:
                found.add(_decode(fields[1], v6))
    return found


def socket_ends(pids: Iterable[int]) -> set[tuple[str, str]]:
    """(local host, remote host) of every TCP and UDP socket (any state) held by ``pids``."""
    inodes = _socket_inodes(pids)
    ends = set()
    for name in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/net/{name}") as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[9]) in inodes:
                v6 = name.endswith("6")
                ends.add((_decode(fields[1], v6)[0], _decode(fields[2], v6)[0]))
    return ends


def off_loopback(ends: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The sockets bound to, or talking to, an address that is not loopback (a listener's remote is unset)."""

    def loop(host: str) -> bool:
        return host.startswith("127.") or host.startswith("::ffff:127.") or host == "::1"

    return [(a, b) for a, b in ends if not loop(a) or not (loop(b) or b in ("0.0.0.0", "::"))]
