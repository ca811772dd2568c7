"""Hosts on one machine: a network namespace per host on a private bridge, each program in its own pid namespace.

    with NetworkHosts(4) as hosts:          # root only; see multihost-notes.md
        hosts.address(0)                    # 10.77.K.1: exists only inside the namespaces
        argv = hosts.prefix(2) + ["python", ...]   # runs "on host 2", pid 1 of its own pid namespace
        hosts.power_cut(2)                  # every process of host 2 SIGKILLed at once
        hosts.partition(1); hosts.heal(1)   # host 1's link down, up

The addresses have no route from the machine's own namespace, so nothing
here can send traffic anywhere but loopback and these namespaces. Leaving
the ``with`` (also on a failure) kills every process in them and deletes
the namespaces.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from types import TracebackType

__all__ = ["NetworkHosts", "netns_unavailable"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "building hosts from network namespaces needs root"
    for tool in ("ip", "unshare"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            return f"{tool} is not installed"
    name = f"fa-probe-{os.getpid()}"
    made = _ip("netns", "add", name, check=False)
    if made.returncode:
        return f"ip netns add is refused here: {made.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


class NetworkHosts:
    """``count`` hosts ``fa<pid>-hN`` on a bridge in a switch namespace, addresses ``10.77.K.N+1/24``."""

    def __init__(self, count: int) -> None:
        tag = os.getpid() % 100_000
        self.switch = f"fa{tag}-sw"
        self.names = [f"fa{tag}-h{i}" for i in range(count)]
        self.subnet = f"10.77.{tag % 250}"

    def address(self, host: int) -> str:
        return f"{self.subnet}.{host + 1}"

    def __enter__(self) -> NetworkHosts:
        try:
            _ip("netns", "add", self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for i, name in enumerate(self.names):
                _ip("netns", "add", name)
                _ip("-n", self.switch, "link", "add", f"s{i}", "type", "veth", "peer", "name", "eth0", "netns", name)
                _ip("-n", self.switch, "link", "set", f"s{i}", "master", "br0", "up")
                _ip("-n", name, "link", "set", "lo", "up")
                _ip("-n", name, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
                _ip("-n", name, "link", "set", "eth0", "up")
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.destroy()

    def prefix(self, host: int) -> list[str]:
        """What runs a command on ``host``: its network namespace, a pid and mount namespace, its own ``/dev/shm``."""
        return [
            "ip",
            "netns",
            "exec",
            self.names[host],
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
            'mount -t tmpfs tmpfs /dev/shm && exec "$@"',
            "sh",
        ]

    def run(self, host: int, *argv: str) -> subprocess.CompletedProcess[str]:
        """A short command in ``host``'s network namespace (``ss``, ``ip``)."""
        argv = ("ip", "netns", "exec", self.names[host], *argv)
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    def pids(self, host: int) -> list[int]:
        done = _ip("netns", "pids", self.names[host], check=False)
        return [int(p) for p in done.stdout.split()]

    def power_cut(self, host: int) -> None:
        """Every process of ``host`` SIGKILLed at once: nothing on it gets to say goodbye."""
        pids = self.pids(host)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while self.pids(host) and time.monotonic() < deadline:
            time.sleep(0.05)

    def partition(self, host: int) -> None:
        _ip("-n", self.names[host], "link", "set", "eth0", "down")

    def heal(self, host: int) -> None:
        _ip("-n", self.names[host], "link", "set", "eth0", "up")

    def listening(self, host: int) -> list[str]:
        """The local addresses of every listening TCP socket on ``host``."""
        done = self.run(host, "ss", "-Hltn")
        return [line.split()[3] for line in done.stdout.splitlines() if line.strip()]

    def destroy(self) -> None:
        for i, _ in enumerate(self.names):
            self.power_cut(i)
        for name in [*self.names, self.switch]:
            _ip("netns", "del", name, check=False)
