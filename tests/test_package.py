"""The package surface and layout: exports, documentation, types, lint, module sizes, what programs import."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import flower_actors
from flower_actors import _moved
from tests.proctools import REPO

PACKAGE = REPO / "flower_actors"
PROGRAMS = [
    PACKAGE / "demo.py",
    PACKAGE / "soak.py",
    *sorted((PACKAGE / "bench").glob("*.py")),
    *REPO.glob("demo/*.py"),
]


def all_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(flower_actors.__path__, "flower_actors.")]


def test_all_is_exactly_the_public_names_sorted() -> None:
    public = {n for n in vars(flower_actors) if not n.startswith("_")} - {"annotations"}
    public -= {m.rpartition(".")[2] for m in all_modules()} | set(_moved.MOVED)  # submodules are attributes too
    assert flower_actors.__all__ == sorted(flower_actors.__all__)
    assert set(flower_actors.__all__) == public - {"__version__"}


def test_every_public_name_and_module_is_documented() -> None:
    for name in flower_actors.__all__:
        obj = getattr(flower_actors, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, f"{name} has no docstring"
    for name in all_modules():
        module = importlib.import_module(name)
        assert module.__doc__, f"module {name} has no docstring"
        for exported in getattr(module, "__all__", []):
            assert hasattr(module, exported), f"{name}.__all__ names a missing {exported}"


def test_every_exception_is_in_the_one_tree() -> None:
    for name in all_modules():
        for obj in vars(importlib.import_module(name)).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.startswith("flower_actors"):
                assert issubclass(obj, flower_actors.FlowerActorsError), f"{obj.__qualname__} is outside the tree"
                assert obj.__module__ == "flower_actors.errors", f"{obj.__qualname__} is not in errors.py"


def test_message_class_names_are_unique_and_not_thespians() -> None:
    from flower_actors import control, messages
    from flower_actors.link import embedded, protocol
    from flower_actors.node import wire, workload

    names = [
        n
        for m in (control, messages, protocol, embedded, wire, workload)
        for n, c in vars(m).items()
        if inspect.isclass(c) and c.__module__ == m.__name__
    ]
    assert len(names) == len(set(names))
    thespian_names = {"WakeupMessage", "ChildActorExited", "ActorExitRequest", "PoisonMessage", "DeadEnvelope"}
    assert not thespian_names & set(names)


def test_modules_are_small_and_the_task_path_reads_in_three_short_files() -> None:
    sizes = {p.relative_to(REPO): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert all(lines <= 400 for lines in sizes.values()), {p: n for p, n in sizes.items() if n > 400}
    path = ["lead_client.py", "workload_client.py", "sender.py"]
    assert all(sizes[Path("flower_actors/node") / name] <= 400 for name in path)


def test_parts_never_import_thespian_or_each_other() -> None:
    parts = ["intake", "routing", "pool", "recovery", "shutdown"]
    for part in parts:
        tree = ast.parse((PACKAGE / "node" / f"{part}.py").read_text())
        imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        assert not any(m.startswith("thespian") for m in imported), part
        assert not {m.lstrip(".") for m in imported} & set(parts), f"{part} imports another part: {imported}"


def test_programs_use_only_the_public_api_and_the_tools_module() -> None:
    allowed = {"flower_actors": set(flower_actors.__all__), "flower_actors.tools": None}
    for program in PROGRAMS:
        for node in ast.walk(ast.parse(program.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flower_actors"):
                assert node.level == 0 and node.module in allowed, f"{program.name} imports {node.module}"
                names = allowed[node.module]
                assert names is None or {a.name for a in node.names} <= names, f"{program.name}: {node.module}"
            elif isinstance(node, ast.ImportFrom) and node.level:
                assert node.module in {"scenarios", "systems", "work", "flower", "flower_soak"}, (
                    f"{program.name}: .{node.module}"
                )


def test_importing_the_package_never_imports_flwr() -> None:
    code = "import sys, flower_actors, flower_actors.tools, flower_actors.flower; print('flwr' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stdout + proc.stderr


def test_mypy_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "flower_actors", "demo"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_lint_and_format_are_clean() -> None:
    for command in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
