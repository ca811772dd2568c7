"""Real Flower programs on this machine, for the tests and the benchmark (no flwr import here).

``SuperLinkProcess`` runs ``flower-superlink`` on a free loopback port;
``FlwrCli`` drives it with ``flwr run``/``log``/``ls``/``stop``;
``SuperNodeProcess`` runs a node program (ours or ``flower-supernode``).
Every program gets ``quiet_env`` (no telemetry, no update check, no proxy)
and its own ``FLWR_HOME`` in the given folder. ``stop()`` ends each program
and every process it started (Flower's SuperExec starts its own session, so
its processes are found by parentage and ended by pid).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ..runtime.proc import descendants, process_alive, session_processes
from .environment import quiet_env

__all__ = ["FlwrCli", "SuperLinkProcess", "SuperNodeProcess", "descendants", "free_port", "toml_config"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def end_processes(pids: Sequence[int], grace: float = 10.0) -> list[int]:
    """SIGTERM ``pids``, wait up to ``grace`` s, SIGKILL the rest; the pids that had to be killed."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(process_alive(p) for p in pids):
        time.sleep(0.05)
    killed = [p for p in pids if process_alive(p)]
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return killed


def toml_config(values: Mapping[str, Any]) -> str:
    """``{"rounds": 2, "out": "/x"}`` as flwr's ``--run-config`` wants it: ``rounds=2 out="/x"``."""
    return " ".join(f"{k}={json.dumps(v)}" for k, v in values.items())


class _Program:
    """A program started by us, with its log file; ``stop`` ends it and everything it started."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.workdir = workdir
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{name}.log"
        self._log: IO[bytes] | None = None
        self.log_start = 0
        """Where the log of the latest start begins (a restart appends to the same file)."""
        self.seen: set[int] = set()

    def _start(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_default_sigint,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def processes(self) -> list[int]:
        """The program and every live process below it (remembered, so ``stop`` finds them all)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        found = [self.proc.pid, *descendants(self.proc.pid)]
        self.seen.update(found)
        return found

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        """The exit status within ``timeout`` s, or ``None``."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 10.0) -> list[int]:
        """End the program (SIGTERM, then SIGKILL) and whatever it started; the pids that had to be killed."""
        self.processes()
        killed: list[int] = []
        if self.proc is not None and self.proc.poll() is None:
            killed = end_processes([self.proc.pid], grace)
        if self.proc is not None:
            self.proc.wait(5)
        killed += end_processes([p for p in self.seen if process_alive(p)], 3.0)
        self.seen.clear()
        if self._log is not None:
            self._log.close()
            self._log = None
        return killed

    def log_text(self, latest: bool = False) -> str:
        """The program's log (with ``latest``, only since its latest start)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self.log_start if latest else 0)
                return log.read().decode(errors="replace")
        except OSError:
            return ""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell without job control starts us with SIGINT ignored


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


class SuperLinkProcess(_Program):
    """``flower-superlink`` on ``host`` (127.0.0.1), plain HTTP or TLS, state in memory or in ``database``.

    ``tls`` (a ``certs.ServerCertificate``) serves the Fleet, Control and
    Runtime APIs over TLS; ``node_auth`` adds ``--enable-supernode-auth``
    (nodes must be registered with ``FlwrCli.register``); ``prefix`` runs it
    inside something (``ip netns exec HOST ...``), and then readiness is read
    from its log alone.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        tls: Any = None,
        node_auth: bool = False,
        database: Path | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        super().__init__(workdir, "superlink")
        self.port = port or free_port()
        self.host = host
        self.tls = tls
        self.node_auth = node_auth
        self.database = database
        self.prefix = list(prefix)
        self.home = workdir / "superlink-home"

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def argv(self) -> list[str]:
        argv = [_bin("flower-superlink"), "--host", self.host, "--port", str(self.port)]
        if self.tls is None:
            argv.append("--insecure")
        else:
            argv += ["--ssl-ca-certfile", str(self.tls.ca), "--ssl-certfile", str(self.tls.certificate)]
            argv += ["--ssl-keyfile", str(self.tls.key)]
        if self.node_auth:
            argv.append("--enable-supernode-auth")
        if self.database is not None:
            argv += ["--database", str(self.database)]
        return [*self.prefix, *argv, "--disable-runtime-dependency-installation"]

    def start(self, timeout: float = 60.0) -> SuperLinkProcess:
        """Start it and wait until its HTTP port answers."""
        self._start(self.argv(), quiet_env(FLWR_HOME=str(self.home)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"flower-superlink exited with {self.proc.returncode}:\n{self.log_text()[-2000:]}")
            if "Uvicorn running on" in self.log_text(latest=True) and self._answers():
                self.processes()
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"flower-superlink did not start within {timeout} s:\n{self.log_text()[-2000:]}")

    def _answers(self) -> bool:
        if self.prefix:
            return True  # another network namespace: its log line is all we can see
        with socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET) as s:
            return s.connect_ex((self.host, self.port)) == 0

    def restart(self) -> None:
        """Stop it and start it again on the same port (without ``database``, nodes are unknown now: a 401)."""
        self.stop()
        self.start()


class SuperNodeProcess(_Program):
    """A node program pointed at a SuperLink: ``flower-actors-supernode`` (ours) or ``flower-supernode``."""

    def __init__(
        self,
        workdir: Path,
        superlink: str,
        *,
        flower: bool = False,
        extra: Sequence[str] = (),
        insecure: bool = True,
        prefix: Sequence[str] = (),
        home: Path | None = None,
    ) -> None:
        super().__init__(workdir, "flower-supernode" if flower else "flower-actors-supernode")
        self.superlink = superlink
        self.flower = flower
        self.extra = list(extra)
        self.insecure = insecure
        self.prefix = list(prefix)
        self.home = home or workdir / f"{self.name}-home"

    def start(self, env: Mapping[str, str] | None = None) -> SuperNodeProcess:
        """Start it (again: a restart keeps ``home``, so the node finds its FABs and its node id)."""
        argv = [
            *self.prefix,
            _bin(self.name),
            *(["--insecure"] if self.insecure else []),
            "--superlink",
            self.superlink,
        ]
        if self.flower:
            argv += ["--host", "127.0.0.1", "--port", str(free_port())]
        self._start(argv + self.extra, quiet_env(env, FLWR_HOME=str(self.home)))
        return self

    def processes(self) -> list[int]:
        """The program, what it started, and (ours) every process of its actor system's session."""
        found = super().processes()
        match = re.search(r"processes in session (\d+)", self.log_text(latest=True))
        if found and match and not self.prefix:  # in a pid namespace the session id is not ours to read
            found += [p for p in session_processes(int(match.group(1))) if p not in found]
            self.seen.update(found)
        return found

    def wait_joined(self, timeout: float = 60.0) -> None:
        """Wait until the node says it joined (its start-up log line)."""
        marker = "SuperNode ID" if self.flower else "joined the SuperLink"
        deadline = time.monotonic() + timeout
        while marker not in self.log_text(latest=True):
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not join within {timeout} s:\n{self.log_text()[-2000:]}")
            time.sleep(0.1)


class FlwrCli:
    """The ``flwr`` command line pointed at one SuperLink (its own ``FLWR_HOME``)."""

    def __init__(
        self, workdir: Path, superlink: str, *, root_certificates: Path | None = None, prefix: Sequence[str] = ()
    ) -> None:
        self.home = workdir / "cli-home"
        self.home.mkdir(parents=True, exist_ok=True)
        security = (
            f"root-certificates = {json.dumps(str(root_certificates))}" if root_certificates else "insecure = true"
        )
        (self.home / "config.toml").write_text(
            f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "{superlink}"\n{security}\n'
        )
        self.env = quiet_env(FLWR_HOME=str(self.home))
        self.prefix = list(prefix)

    def _flwr(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, _bin("flwr"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def _json(self, *args: str, timeout: float = 60.0) -> dict[str, Any]:
        done = self._flwr(*args, "--format", "json", timeout=timeout)
        try:
            reply: dict[str, Any] = json.loads(done.stdout)
        except json.JSONDecodeError:
            raise RuntimeError(
                f"flwr {' '.join(args)} printed no JSON: {done.stdout[-500:]} {done.stderr[-500:]}"
            ) from None
        if not reply.get("success", False):
            raise RuntimeError(f"flwr {' '.join(args)} failed: {reply}")
        return reply

    def run(self, app: Path, config: Mapping[str, Any] | None = None) -> int:
        """``flwr run APP local``: the new run's id."""
        args = ["run", str(app), "local"]
        if config:
            args += ["--run-config", toml_config(config)]
        return int(self._json(*args)["run-id"])

    def wait(self, run_id: int, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until the run finished (``flwr log --stream`` ends with it); its ``flwr ls`` entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._flwr("log", str(run_id), "local", "--stream", timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
            ended_at = time.monotonic()
            info = self.info(run_id)
            if str(info.get("status", "")).startswith("finished"):
                info["ended_at"] = ended_at  # monotonic: when the log stream ended with the run
                return info
            time.sleep(0.5)
        info = self.info(run_id)
        if not str(info.get("status", "")).startswith("finished"):
            raise TimeoutError(f"run {run_id} did not finish within {timeout} s: {info.get('status')}")
        return info

    def info(self, run_id: int) -> dict[str, Any]:
        """The run's ``flwr ls --run-id`` entry (``status`` is e.g. ``finished:completed``)."""
        runs = self._json("ls", "local", "--run-id", str(run_id))["runs"]
        return dict(runs[0]) if runs else {}

    def stop(self, run_id: int) -> None:
        """``flwr stop RUN``."""
        self._json("stop", str(run_id), "local")

    def register(self, public_key: Path) -> int:
        """``flwr supernode register KEY.pub``: the node id the SuperLink gave the key."""
        return int(self._json("supernode", "register", str(public_key), "local")["node-id"])
