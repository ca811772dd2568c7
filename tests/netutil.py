"""Which TCP addresses a set of processes listens on, read from /proc."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable

from flower_actors.runtime.proc import socket_inodes, socket_table


def _socket_inodes(pids: Iterable[int]) -> set[int]:
    return set().union(*(socket_inodes(pid) for pid in pids))


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
    return {_decode(e.local, e.table.endswith("6")) for e in socket_table() if e.state == "0A" and e.inode in inodes}


def socket_ends(pids: Iterable[int]) -> set[tuple[str, str]]:
    """(local host, remote host) of every TCP and UDP socket (any state) held by ``pids``."""
    inodes = _socket_inodes(pids)
    ends = set()
    for e in socket_table(("tcp", "tcp6", "udp", "udp6")):
        if e.inode in inodes:
            v6 = e.table.endswith("6")
            ends.add((_decode(e.local, v6)[0], _decode(e.remote, v6)[0]))
    return ends


def off_loopback(ends: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The sockets bound to, or talking to, an address that is not loopback (a listener's remote is unset)."""

    def loop(host: str) -> bool:
        return host.startswith("127.") or host.startswith("::ffff:127.") or host == "::1"

    return [(a, b) for a, b in ends if not loop(a) or not (loop(b) or b in ("0.0.0.0", "::"))]
