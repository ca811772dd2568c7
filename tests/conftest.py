"""Fixtures: real actor systems on free ports, and a guard that fails a test leaving processes behind."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from flower_actors import LocalFederation, NodeConfig, SystemConfig, local_federation
from flower_actors.system import kill_session, session_processes, started_sessions


@pytest.fixture(autouse=True)
def no_process_left() -> Iterator[None]:
    """Fail the test if any actor system it started still has a live process afterwards."""
    before = set(started_sessions())
    yield
    leaked: list[int] = []
    for session in set(started_sessions()) - before:
        deadline = time.monotonic() + 5.0
        while session_processes(session) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = session_processes(session)
        if alive:
            leaked.extend(alive)
            kill_session(session)
    assert not leaked, f"processes left behind by the test: {leaked}"


@pytest.fixture
def federation() -> Iterator[Callable[..., LocalFederation]]:
    """Start a federation of the given NodeConfigs; every one is stopped after the test."""
    started = []

    def start(*nodes: NodeConfig) -> LocalFederation:
        context = local_federation(list(nodes), SystemConfig())
        fed = context.__enter__()
        started.append(context)
        return fed

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)


@pytest.fixture
def node(federation: Callable[..., LocalFederation]) -> Callable[..., LocalFederation]:
    """Start one node with ``NodeConfig(**options)``."""

    def start(**options: object) -> LocalFederation:
        return federation(NodeConfig(**options))  # type: ignore[arg-type]

    return start
