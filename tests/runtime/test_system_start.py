"""A start that fails leaves no process behind, also when Thespian had started its admin before giving up."""

from __future__ import annotations

import gc
import socket
import time
from typing import Any

import pytest

from flower_actors import SystemConfig
from flower_actors.errors import SystemStartError
from flower_actors.runtime import system as system_module
from flower_actors.runtime.proc import listening_processes


def _still_listening(port: int, timeout: float = 10.0) -> list[int]:
    """Pids listening on ``port`` (waits up to ``timeout`` for them to go)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = listening_processes(port)
        if not pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


def _real_start(calls: list[int]) -> Any:
    real = system_module.ActorSystem

    def start(*args: Any, **kwargs: Any) -> Any:
        system = real(*args, **kwargs)
        calls.append(args[1]["Admin Port"])
        assert listening_processes(calls[-1]), "the admin listens"
        return system

    return start


def test_an_admin_thespian_gave_up_on_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    ports: list[int] = []
    start = _real_start(ports)

    def slow_admin(*args: Any, **kwargs: Any) -> Any:  # Thespian raising after its admin started
        start(*args, **kwargs)
        raise RuntimeError("ActorAddr-(T|:1) is not a valid or useable ActorSystem Admin")

    monkeypatch.setattr(system_module, "ActorSystem", slow_admin)
    with pytest.raises(SystemStartError, match="not a valid or useable"):
        system_module.start_actor_system(SystemConfig())

    assert ports, "the admin was started"
    assert _still_listening(ports[0]) == [], "the admin and its logger are gone"


def test_a_system_whose_watchdog_never_answers_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    ports: list[int] = []
    start = _real_start(ports)

    def mute(*args: Any, **kwargs: Any) -> Any:
        system = start(*args, **kwargs)
        monkeypatch.setattr(system, "ask", lambda *a, **k: None)  # no answer, as from a stuck admin
        return system

    monkeypatch.setattr(system_module, "ActorSystem", mute)
    with pytest.raises(SystemStartError, match="did not answer"):
        system_module.start_actor_system(SystemConfig())

    assert ports and _still_listening(ports[0]) == [], "every process of that system is gone"


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # Thespian's failed constructor leaves its socket open
def test_a_listener_that_was_there_before_is_left_alone() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(SystemStartError):
            system_module.start_actor_system(SystemConfig(admin_port=port))
        assert listening_processes(port), "this process still listens: nothing of it was ended"
        gc.collect()  # that socket's warning, here where it is ignored
