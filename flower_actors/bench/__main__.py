"""``python -m flower_actors.bench [SCENARIO ...] [--quick] [--json]``.

Each scenario runs in a fresh Python process of its own (``--worker``), every
system of it side by side there: a scenario's actor systems and raw processes
are forked from a process that holds nothing of the scenarios before it (the
1,000 processes of ``scale`` were forked, through the node's processes, from
a benchmark that had run six scenarios: 25% slower than alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from typing import Any, TextIO

from flower_actors.tools import Progress, add_log_level, add_version, configure_logging, exit_on_sigterm, width_of

from .scenarios import FLOWER_SCENARIOS, SCENARIOS, Row

TABLE_WIDTH = 100
MAIN_METRIC = {
    "fed": ("ratio_to_lower_bound", "makespan / lower bound"),
    "cpu": ("speedup_vs_thread_pool", "speed-up over thread-pool"),
    "overhead": ("tasks_per_s", "tasks/s"),
    "latency": ("forward_ms", "forward ms; result ms"),
    "spawn": ("spawn_ms", "first task pulled → handler start, ms"),
    "memory": ("pss_per_client_mb", "PSS MB per client; LeadClient PSS MB; start-up cost per client"),
    "scale": ("live_workloads", "workloads answered; the run just before (see BENCHMARKS.md)"),
    "flower": ("makespan_s", "wall s; ServerApp s; node CPU s; node peak PSS MB (ours / flower-supernode)"),
    "flower-soak": ("passed", "checks; replies by error code; long-lived USS first -> last quarter"),
}


def _cell(row: Row) -> str:
    scenario = row["scenario"]
    if scenario == "latency":
        f, r = row["forward_ms"], row["result_ms"]
        return f"forward p50 {f['p50']} p99 {f['p99']}; result p50 {r['p50']} p99 {r['p99']}"
    if scenario == "spawn":
        return f"p50 {row['spawn_ms']['p50']} p99 {row['spawn_ms']['p99']}"
    if scenario == "memory":
        return (
            f"{row['pss_per_client_mb']} per client; LeadClient/parent {row['lead_client_pss_mb']}; "
            f"{row['cpu_ms_per_client']} ms CPU, {row['minor_faults_per_client']} page faults per client"
        )
    if scenario == "flower":
        ratio = (
            f" (x{row['makespan_s_ratio']} wall, x{row['node_cpu_s_ratio']} CPU)" if "makespan_s_ratio" in row else ""
        )
        return (
            f"{row['case']}: {row['runs']} run(s), ServerApp {row['serverapp_s']} s (floor {row['floor_s']}), "
            f"CPU {row['node_cpu_s']} s, PSS {row['node_peak_pss_mb']} MB{ratio}"
        )
    if scenario == "flower-soak":
        failed = [name for name, ok in row["checks"].items() if not ok]
        verdict = "PASS" if row["passed"] else "FAIL: " + ", ".join(failed)
        return (
            f"{verdict}; {row['runs']} runs x {row['rounds']} rounds, replies {row['replies_by_code']}, "
            f"USS {row['uss_first_quarter_mb']} -> {row['uss_last_quarter_mb']} MB"
        )
    if scenario == "overhead":
        return f"{row['tasks_per_s']} (x{row['ratio_to_raw']} of raw)"
    if scenario == "scale":
        first = f"{row['first_run_results']} in {row['first_run_s']} s"
        return f"{row['live_workloads']} (the run before, not measured: {first})"
    return str(row[MAIN_METRIC[scenario][0]])


def _print_table(rows: list[Row], stream: TextIO) -> None:
    """Each scenario's rows, a system per line and its figures below it, wrapped to fit ``stream`` (at most 100)."""
    width = width_of(stream, cap=TABLE_WIDTH)
    current = None
    for row in rows:
        if row["scenario"] != current:
            current = row["scenario"]
            print(textwrap.fill(f"{current}: {MAIN_METRIC[current][1]}", width, initial_indent="\n"), file=stream)
        status = f"{row['results']}/{row['tasks']} answered, {row['errors']} errors"
        print(
            textwrap.shorten(f"  {row['system']}  ({status}, makespan {row['makespan_s']:.3f} s)", width), file=stream
        )
        print(textwrap.fill(_cell(row), width, initial_indent="      ", subsequent_indent="      "), file=stream)


def _scenario(name: str) -> str:
    if name not in SCENARIOS:
        raise argparse.ArgumentTypeError(f"unknown scenario {name!r}; the scenarios are {', '.join(SCENARIOS)}")
    return name


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m flower_actors.bench", description=__doc__)
    parser.add_argument(
        "scenarios",
        nargs="*",
        type=_scenario,
        metavar="SCENARIO",
        help=f"any of {', '.join(SCENARIOS)} (default: all but {' and '.join(FLOWER_SCENARIOS)})",
    )
    parser.add_argument("--quick", action="store_true", help="smaller versions, for a smoke test")
    parser.add_argument("--json", action="store_true", help="print one JSON line per scenario and system")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # run here, print rows only
    add_log_level(parser)
    add_version(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level, "bench")
    exit_on_sigterm()
    names = args.scenarios or [n for n in SCENARIOS if n not in FLOWER_SCENARIOS]  # by name: they need the extra
    if args.worker:
        for name in names:
            for row in SCENARIOS[name](args.quick):
                print(json.dumps(row), flush=True)
        return 0
    machine: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }
    print(f"machine: {machine}", file=sys.stderr)
    rows: list[Row] = []
    with Progress(len(names), what="scenarios", live=True) as progress:
        for number, name in enumerate(names):
            progress.update(number, f"running {name}", force=True)
            start = time.monotonic()
            new = _in_fresh_process(name, args.quick, args.log_level)
            rows.extend(new)
            progress.print(f"{name} took {time.monotonic() - start:.1f} s")
            if args.json:
                for row in new:
                    print(json.dumps({**row, "quick": args.quick, "machine": machine}), flush=True)
        progress.update(len(names), "done", force=True)
    _print_table(rows, sys.stderr if args.json else sys.stdout)  # with --json, stdout holds only JSON lines
    return 0 if all(_passed(r) for r in rows) else 1


def _in_fresh_process(name: str, quick: bool, log_level: str) -> list[Row]:
    """Run scenario ``name`` in a new Python process (``--worker``); its rows."""
    command = [sys.executable, "-m", "flower_actors.bench", "--worker", "--log-level", log_level, name]
    with subprocess.Popen([*command, *(["--quick"] if quick else [])], stdout=subprocess.PIPE, text=True) as worker:
        try:
            out, _ = worker.communicate()
        except BaseException:  # Ctrl-C reaches the worker too; SIGTERM (exit_on_sigterm) only us: pass it on
            worker.terminate()
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            raise
    if worker.returncode != 0:
        raise SystemExit(f"scenario {name} failed in its process (exit status {worker.returncode})")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _passed(row: Row) -> bool:
    if "passed" in row:  # a soak: error replies are what it provokes
        return bool(row["passed"])
    return bool(row["results"] == row["tasks"] and row["errors"] == 0)


if __name__ == "__main__":
    sys.exit(main())
