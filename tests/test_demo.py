"""The demo and the demo/ scripts as a user runs them: real subprocesses, nothing left behind."""

from __future__ import annotations

import io
import json
import re
import signal
import time
from pathlib import Path

import pytest

from flower_actors.bench import __main__ as bench_main
from tests.proctools import REPO, assert_none_left, marked_env, popen_python, run_python

SMALL = ["--clients", "8", "--tasks", "40", "--gap", "0.02", "--work", "0.3", "--seed", "3"]


@pytest.mark.parametrize(
    ("mode", "picture"), [(["--poll", "0.5"], "run.json"), (["--long-poll"], "run.png")], ids=["periodic", "long-poll"]
)
def test_demo_json_reports_a_complete_run_near_the_lower_bound(mode: list, picture: str, tmp_path: Path) -> None:
    env = marked_env()
    timeline = tmp_path / picture
    args = ["-m", "flower_actors.demo", *SMALL, "--json", "--timeline", str(timeline), *mode]
    proc = run_python(args, env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    assert report["tasks"] == report["results"] == 40 and report["errors"] == 0
    assert report["workloads"] == report["handler_processes"] == report["trace_workloads"]
    assert report["lower_bound_s"] <= report["makespan_s"] <= 1.3 * report["lower_bound_s"] + 0.5
    assert report["base"] == "multiprocTCPBase"
    assert set(report["forward_ms"]) == set(report["result_ms"]) == {"p50", "p99", "max"}
    assert "makespan" in proc.stderr and len(proc.stdout.strip().splitlines()) == 1, "stdout holds only the JSON"
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr, "piped: plain lines"
    if picture.endswith(".json"):  # Chrome trace events: a lane per workload, three segments per task, pull ticks
        events = json.loads(timeline.read_text())["traceEvents"]
        lanes = {e["args"]["name"] for e in events if e["name"] == "thread_name"} - {"pulls"}
        assert len(lanes) == report["trace_workloads"]
        running = [e for e in events if e["name"] == "running"]
        assert len(running) == 40 and all(e["dur"] >= 250_000 for e in running)  # 0.3 s handlers, in µs
        assert sum(e["name"] == "pull" for e in events) >= 3
    else:
        assert timeline.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and timeline.stat().st_size > 10_000
    assert_none_left(env)


def test_demo_reports_a_zero_work_trace_with_a_null_ratio() -> None:
    env = marked_env()
    args = ["--json", "--long-poll", "--tasks", "2000", "--work", "0", "--gap", "0"]
    proc = run_python(["-m", "flower_actors.demo", *args], env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["results"] == report["tasks"] == 2000 and report["errors"] == 0
    assert report["lower_bound_s"] == 0.0 and report["ratio"] is None
    assert "max" in proc.stderr  # result latency's maximum in the summary table (on stderr with --json)
    assert_none_left(env)


def test_demo_rejects_bad_flags_clearly() -> None:
    env = marked_env()
    proc = run_python(["-m", "flower_actors.demo", "--poll", "0"], env, timeout=60)
    assert proc.returncode == 2 and "argument --poll: must be > 0" in proc.stderr
    for args, says in (
        (["--tasks", "0"], "argument --tasks: must be at least 1"),
        (["--gap", "-1"], "argument --gap: must be >= 0"),
    ):
        proc = run_python(["-m", "flower_actors.demo", *args], env, timeout=60)
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    both = run_python(["-m", "flower_actors.demo", "--long-poll", "--poll", "1"], env, timeout=60)
    assert both.returncode == 2 and "argument --poll: not allowed with argument --long-poll" in both.stderr
    picture = run_python(["-m", "flower_actors.demo", "--timeline", "t.pdf"], env, timeout=60)
    assert picture.returncode == 2 and "argument --timeline" in picture.stderr
    soak = run_python(["-m", "flower_actors.soak", "--raise-rate", "2"], env, timeout=60)
    assert soak.returncode == 2 and "PASS" not in soak.stdout and "--raise-rate: must be between 0 and 1" in soak.stderr
    bench = run_python(["-m", "flower_actors.bench", "nope"], env, timeout=60)
    assert bench.returncode == 2 and "the scenarios are fed, cpu" in bench.stderr
    for program in ("demo", "soak", "bench"):
        version = run_python(["-m", f"flower_actors.{program}", "--version"], env, timeout=60)
        assert version.returncode == 0 and "flower_actors 0." in version.stdout
    assert_none_left(env)


@pytest.mark.parametrize(
    "signals", [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGINT]], ids=["ctrl-c", "sigterm", "twice"]
)
def test_interrupting_the_demo_says_what_it_waits_for_and_leaves_no_process(
    tmp_path: Path, signals: list[signal.Signals]
) -> None:
    env = marked_env()
    log = tmp_path / "demo.log"
    proc = popen_python(["-m", "flower_actors.demo", "--work", "30", "--gap", "0.01", "--long-poll"], env, log)
    try:
        deadline = time.monotonic() + 30
        while "submitted" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)  # wait until handlers are running
        time.sleep(1.0)
        proc.send_signal(signals[0])
        deadline = time.monotonic() + 10
        while "Ctrl-C again to stop now" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        said = re.search(r"stopping: waiting up to 5 s for (\d+) running task\(s\); Ctrl-C again", log.read_text())
        assert said and int(said.group(1)) > 0, log.read_text()
        second = time.monotonic()
        for sig in signals[1:]:
            proc.send_signal(sig)
        code = proc.wait(timeout=30)
        took = time.monotonic() - second
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code in (130, 128 + signals[0]), log.read_text()
    if len(signals) > 1:  # the drain would wait 5 s for the 30 s handlers; the second Ctrl-C does not
        assert "stopping now" in log.read_text() and took < 4.0, (took, log.read_text())
    assert_none_left(env)


def test_fed_example_and_fed_picture_scripts_run() -> None:
    env = marked_env()
    example = run_python(["demo/fed_example.py", "--clients", "4", "--tasks", "8", "--work", "0.2"], env, timeout=120)
    assert example.returncode == 0, example.stderr
    assert "8 results from" in example.stdout and "Msg 0 handled" in example.stdout

    picture = run_python(["demo/fed_picture.py"], env, timeout=120)
    assert picture.returncode == 0, picture.stderr
    assert "C2: 3 clients, 6 tasks" in picture.stdout and "D3: C3W3" in picture.stdout
    assert_none_left(env)


def test_readme_embedding_snippet_is_the_tested_file_and_runs() -> None:
    snippet = (REPO / "demo" / "embedding.py").read_text()
    assert snippet.strip() in (REPO / "README.md").read_text(), "README must show demo/embedding.py verbatim"
    env = marked_env()
    proc = run_python(["demo/embedding.py"], env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['hello 0', 'hello 1', 'hello 2']"
    assert proc.stderr == "", "a clean run logs nothing"
    assert_none_left(env)


def test_readme_script_example_runs(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    example = next(block for block in readme.split("```python\n")[1:] if "class Counter" in block).split("```")[0]
    script = tmp_path / "counter_example.py"
    script.write_text(example)
    env = marked_env()
    proc = run_python([str(script)], env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[2, 5]"
    assert_none_left(env)


def test_benchmark_quick_smoke_runs_every_system_side_by_side() -> None:
    env = marked_env()
    proc = run_python(["-m", "flower_actors.bench", "cpu", "spawn", "memory", "--quick", "--json"], env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]  # with --json, every line of stdout is JSON
    assert "0/3 scenarios, running cpu" in proc.stderr  # a progress line per scenario (piped: plain lines)
    assert "1/3 scenarios, running spawn" in proc.stderr
    table = io.StringIO()
    bench_main._print_table(rows, table)
    assert "speed-up over thread-pool" in table.getvalue()
    assert max(len(line) for line in table.getvalue().splitlines()) <= 100, table.getvalue()
    systems = {(r["scenario"], r["system"]) for r in rows}
    assert {("cpu", "ours"), ("cpu", "thread-pool"), ("cpu", "raw-processes")} <= systems
    assert {("spawn", "ours"), ("memory", "ours"), ("memory", "raw-processes")} <= systems
    assert all(r["results"] == r["tasks"] and r["errors"] == 0 for r in rows)
    cpu = {r["system"]: r for r in rows if r["scenario"] == "cpu"}
    assert cpu["ours"]["speedup_vs_thread_pool"] > 1.2, cpu  # two cores: processes beat the GIL
    assert_none_left(env)
