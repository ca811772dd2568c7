"""The package surface: exports, types, documentation."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import flower_actors
from tests.proctools import REPO


def test_every_public_name_is_exported_and_documented() -> None:
    for name in flower_actors.__all__:
        obj = getattr(flower_actors, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, f"{name} has no docstring"
    assert len(set(flower_actors.__all__)) == len(flower_actors.__all__)
    for module_info in pkgutil.iter_modules(flower_actors.__path__):
        module = importlib.import_module(f"flower_actors.{module_info.name}")
        assert module.__doc__, f"module {module_info.name} has no docstring"
        for name in getattr(module, "__all__", []):
            assert hasattr(module, name), f"{module_info.name}.__all__ names a missing {name}"


def test_messages_have_unique_class_names() -> None:
    from flower_actors import control, link, messages

    names = [
        n
        for m in (control, link, messages)
        for n, c in vars(m).items()
        if inspect.isclass(c) and c.__module__ == m.__name__
    ]
    assert len(names) == len(set(names))
    thespian_names = {"WakeupMessage", "ChildActorExited", "ActorExitRequest", "PoisonMessage", "DeadEnvelope"}
    assert not thespian_names & set(names)


def test_mypy_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "flower_actors", "demo"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
