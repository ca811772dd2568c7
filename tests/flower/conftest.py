"""Fixtures for the Flower node: a real ``flower-superlink``, the ``flwr`` CLI, our node, the probe app."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flower_actors.flower.control import LinkOptions
from flower_actors.flower.harness import FlwrCli, SuperLinkProcess
from flower_actors.flower.node import FlowerNode, FlowerNodeConfig, run_flower_node

PROBE_APP = Path(__file__).parent / "app"


@pytest.fixture(scope="module")
def superlink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuperLinkProcess]:
    """A real SuperLink on a free loopback port, shared by a module's tests."""
    link = SuperLinkProcess(tmp_path_factory.mktemp("superlink")).start()
    try:
        yield link
    finally:
        assert link.stop() == [], "the SuperLink or one of its processes had to be killed"


@pytest.fixture(scope="module")
def cli(superlink: SuperLinkProcess, tmp_path_factory: pytest.TempPathFactory) -> FlwrCli:
    return FlwrCli(tmp_path_factory.mktemp("cli"), superlink.address)


def node_config(superlink: SuperLinkProcess, home: Path, **options: Any) -> FlowerNodeConfig:
    link = LinkOptions(superlink=superlink.address, insecure=True, flwr_home=str(home), heartbeat_interval=10.0)
    return FlowerNodeConfig(link=link, warm_pool=1, **options)


@pytest.fixture
def flower_node(superlink: SuperLinkProcess, tmp_path: Path) -> Iterator[FlowerNode]:
    """Our node in this process's actor system, joined to ``superlink``; stopped after the test."""
    with run_flower_node(node_config(superlink, tmp_path / "node-home")) as node:
        yield node


class Probe:
    """Launch the probe app and read what its ServerApp recorded."""

    def __init__(self, cli: FlwrCli, folder: Path) -> None:
        self.cli = cli
        self.folder = folder
        self.outs: dict[int, Path] = {}

    def launch(self, **config: Any) -> int:
        out = self.folder / f"probe-{len(self.outs)}.json"
        run_id = self.cli.run(PROBE_APP, {"out": str(out), **config})
        self.outs[run_id] = out
        return run_id

    def finish(self, run_id: int, timeout: float = 180.0) -> dict[str, Any]:
        """Wait for the run; what its ServerApp recorded, with the run's final ``status``."""
        info = self.cli.wait(run_id, timeout)
        out = self.outs[run_id]
        record: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
        record["status"] = info.get("status")
        return record


@pytest.fixture
def probe(cli: FlwrCli, tmp_path: Path) -> Probe:
    return Probe(cli, tmp_path)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)
