"""The timeline writer, the log format and process names, and a user's mypy run: what a person sees."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from flower_actors import ConfigError, TaskIns, TaskRes, write_timeline
from flower_actors.runtime.logs import ActorFormatter
from tests.proctools import REPO


def _results() -> list[TaskRes]:
    out = []
    for i in range(6):
        ins = TaskIns.create(f"w{i % 3}", i)
        t = ins.created_at
        res = TaskRes.answer(ins, started_at=t + 0.2, finished_at=t + 1.2)
        out.append(dataclasses.replace(res, pulled_at=t + 0.1, stored_at=t + 1.25))
    return out


def test_json_timeline_is_chrome_trace_events_with_a_lane_per_workload(tmp_path: Path) -> None:
    path = write_timeline(_results(), tmp_path / "t.json")
    events = json.loads(path.read_text())["traceEvents"]
    lanes = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert lanes == {"pulls", "w=w0", "w=w1", "w=w2"}
    by_name = [e["name"] for e in events if e["ph"] == "X"]
    assert by_name.count("running") == by_name.count("waiting") == by_name.count("result on its way") == 6
    running = [e for e in events if e["name"] == "running"]
    assert all(abs(e["dur"] - 1e6) < 1e3 for e in running)
    assert any(e["ph"] == "i" and e["name"] == "pull" for e in events)


def test_svg_timeline_is_drawn_and_a_missing_matplotlib_names_the_extra(tmp_path: Path) -> None:
    svg = write_timeline(_results(), tmp_path / "t.svg")
    assert "<svg" in svg.read_text()[:500]
    with pytest.raises(ConfigError, match="extension must be one of"):
        write_timeline(_results(), tmp_path / "t.pdf")
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from flower_actors import write_timeline, ConfigError\n"
        "try:\n    write_timeline([], sys.argv[1])\nexcept ConfigError as e:\n    print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t.png")], capture_output=True, text=True)
    assert "pip install 'flower_actors[plot]'" in proc.stdout, proc.stderr


def test_log_records_carry_time_level_and_the_process_name() -> None:
    import logging

    record = logging.LogRecord("flower_actors.x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    record.actor = "WorkloadClient w=3"
    line = ActorFormatter().format(record)
    assert line.endswith("INFO    WorkloadClient w=3 flower_actors.x: hello there") and line[:4].isdigit()


def test_mypy_checks_a_user_script_against_the_installed_package(tmp_path: Path) -> None:
    """The README's editable install must be visible to mypy (setuptools' import-hook mode is not)."""
    script = tmp_path / "user_script.py"
    script.write_text('from flower_actors import TaskIns\n\ntask: int = TaskIns.create("w", 1)\n')
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", str(script)], capture_output=True, text=True, cwd=tmp_path
    )
    assert "import-not-found" not in proc.stdout, proc.stdout
    assert 'expression has type "TaskIns", variable has type "int"' in proc.stdout, proc.stdout


def test_readme_asks_for_no_file_outside_the_repository() -> None:
    readme = (REPO / "README.md").read_text()
    assert "../" not in readme


def test_ps_shows_each_process_by_its_role() -> None:
    from flower_actors import run_node

    def title(pid: int) -> str:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()

    with run_node(app="flower_actors.examples:EchoClient", long_poll=True) as node:
        node.driver().run([TaskIns.create("site-7", "hi")], timeout=30)
        lead = node.started[0].pid
        workers = node.status().handler_pids
        assert title(lead).startswith("LeadClient"), title(lead)
        assert any(title(pid).startswith("WorkloadClient w=site-7") for pid in workers), [title(p) for p in workers]
