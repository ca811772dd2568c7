"""``python -m flower_actors.soak``: many zero-work tasks with injected faults.

Runs ``--tasks`` tasks over ``--workloads`` workloads on one long-poll node
with a per-task deadline; a fraction of the handlers raise, exit their
process, or hang past the deadline (``FaultInjectionClient``). It checks
that every task got exactly one answer of the expected kind, samples the
LeadClient's memory at each quarter of the results, and counts the
system's processes after shutdown.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flower_actors import AppSpec, ErrorKind, NodeConfig, SystemConfig, TaskIns, TaskRes, run_node
from flower_actors.tools import (
    Progress,
    add_log_level,
    add_version,
    at_least,
    configure_logging,
    exit_on_sigterm,
    fraction,
    memory_kb,
    positive,
    print_table,
    session_processes,
)

__all__ = ["SoakSpec", "main", "run_soak"]

FIGURES = (
    "tasks",
    "results",
    "answered_once",
    "answered_twice_or_more",
    "unanswered",
    "wrong_kind",
    "kinds",
    "elapsed_s",
    "tasks_per_s",
    "workload_clients_created",
    "deaths",
    "deadline_kills",
    "lead_memory_kb_by_quarter",
    "lead_rss_growth_kb",
    "processes_left",
)
"""The report's figures the soak prints, in this order."""

EXPECTED = {
    "ok": "ok",
    "raise": ErrorKind.HANDLER_ERROR,
    "exit": ErrorKind.WORKLOAD_CLIENT_DIED,
    "hang": ErrorKind.DEADLINE_EXCEEDED,
}


@dataclass(frozen=True)
class SoakSpec:
    """What the soak runs."""

    tasks: int = 10_000
    workloads: int = 200
    raise_rate: float = 0.01
    exit_rate: float = 0.005
    hang_rate: float = 0.005
    deadline_s: float = 1.0
    seed: int = 0
    submit_chunk: int = 500


def plan(spec: SoakSpec) -> list[TaskIns]:
    """The tasks, each with its action as content, in submission order."""
    rng = random.Random(spec.seed)
    tasks = []
    for i in range(spec.tasks):
        draw = rng.random()
        if draw < spec.raise_rate:
            action = "raise"
        elif draw < spec.raise_rate + spec.exit_rate:
            action = "exit"
        elif draw < spec.raise_rate + spec.exit_rate + spec.hang_rate:
            action = "hang"
        else:
            action = "ok"
        tasks.append(TaskIns.create(i % spec.workloads, action))
    return tasks


def run_soak(spec: SoakSpec, progress: Progress | None = None) -> dict[str, Any]:
    """Run the soak and return its figures (see the module docstring)."""
    tasks = plan(spec)
    actions = {t.task_id: t.content for t in tasks}
    config = NodeConfig(
        app=AppSpec("flower_actors.examples:FaultInjectionClient"),
        long_poll=True,
        task_deadline_s=spec.deadline_s,
    )
    received: list[TaskRes] = []
    memory: list[dict[str, int]] = []
    start = time.monotonic()
    with run_node(config, system=SystemConfig()) as node:
        session = node.handle.session_id
        lead_pid = node.started[config.node_id].pid
        driver = node.driver("soak")
        for i in range(0, len(tasks), spec.submit_chunk):
            driver.submit(tasks[i : i + spec.submit_chunk])
        quarter = max(1, len(tasks) // 4)
        next_mark = quarter
        deadline = time.monotonic() + 120 + spec.tasks * 0.01
        while len(received) < len(tasks) and time.monotonic() < deadline:
            received.extend(driver.collect(wait=0.5))
            while len(received) >= next_mark and len(memory) < 4:
                memory.append(memory_kb(lead_pid))
                next_mark += quarter
            if progress:
                progress.update(len(received))
        time.sleep(0.2)
        received.extend(driver.collect())  # a second answer would show up here
        status = node.status()
    elapsed = time.monotonic() - start
    if progress:
        progress.close()
    time.sleep(0.2)
    left = session_processes(session)

    per_task = Counter(r.ins_id for r in received)
    wrong_kind = [
        f"{actions.get(r.ins_id)} -> {r.error or 'ok'}"
        for r in received
        if (r.error.kind if r.error else "ok") != EXPECTED[actions.get(r.ins_id, "ok")]
    ]
    kinds = Counter(r.error.kind if r.error else "ok" for r in received)
    first, last = (memory[0], memory[-1]) if memory else ({}, {})
    return {
        "tasks": len(tasks),
        "results": len(received),
        "answered_once": sum(1 for t in tasks if per_task.get(t.task_id) == 1),
        "answered_twice_or_more": sum(1 for n in per_task.values() if n > 1),
        "unanswered": sum(1 for t in tasks if t.task_id not in per_task),
        "wrong_kind": len(wrong_kind),
        "wrong_kind_examples": wrong_kind[:5],
        "planned": dict(Counter(actions.values())),
        "kinds": dict(kinds),
        "elapsed_s": round(elapsed, 2),
        "tasks_per_s": round(len(tasks) / elapsed, 1),
        "workload_clients_created": status.workloads_created,
        "deaths": status.deaths,
        "deadline_kills": status.deadline_kills,
        "lead_memory_kb_by_quarter": memory,
        "lead_rss_growth_kb": last.get("rss_kb", 0) - first.get("rss_kb", 0),
        "processes_left": len(left),
    }


def verdict(report: dict[str, Any], max_growth_kb: int = 8192) -> str | None:
    """Why the soak failed, or ``None`` when every check holds."""
    if report["answered_once"] != report["tasks"] or report["results"] != report["tasks"]:
        return "not every task was answered exactly once"
    if report["wrong_kind"]:
        return f"{report['wrong_kind']} result(s) of the wrong kind"
    if report["processes_left"]:
        return f"{report['processes_left']} process(es) left"
    if report["lead_rss_growth_kb"] > max_growth_kb:
        return f"LeadClient memory grew by {report['lead_rss_growth_kb']} KiB"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m flower_actors.soak``."""
    p = argparse.ArgumentParser(prog="python -m flower_actors.soak", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=at_least(1), default=10_000, help="zero-work tasks to run (default 10000)")
    p.add_argument("--workloads", type=at_least(1), default=200, help="workloads they spread over (default 200)")
    p.add_argument("--raise-rate", type=fraction, default=0.01, help="share of handlers that raise (default 0.01)")
    p.add_argument("--exit-rate", type=fraction, default=0.005, help="share that exit their process (default 0.005)")
    p.add_argument("--hang-rate", type=fraction, default=0.005, help="share that hang past the deadline (0.005)")
    p.add_argument("--deadline", type=positive(float), default=1.0, help="per-task deadline in seconds (default 1.0)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the plan (default 0)")
    p.add_argument("--json", action="store_true", help="print only one JSON object on stdout (the figures on stderr)")
    add_log_level(p)
    add_version(p)
    args = p.parse_args(argv)
    configure_logging(args.log_level, "soak")
    if args.raise_rate + args.exit_rate + args.hang_rate > 1.0:
        p.error("--raise-rate, --exit-rate and --hang-rate must add up to at most 1")
    exit_on_sigterm()
    spec = SoakSpec(
        args.tasks, args.workloads, args.raise_rate, args.exit_rate, args.hang_rate, args.deadline, args.seed
    )
    with Progress(spec.tasks) as progress:
        report = run_soak(spec, progress)
    problem = verdict(report)
    figures = sys.stderr if args.json else sys.stdout  # with --json, stdout holds only the JSON object
    print_table("soak", [(key, str(report[key])) for key in FIGURES], stream=figures)
    print("soak:", "PASS" if problem is None else f"FAIL ({problem})", file=figures)
    if args.json:
        print(json.dumps(report))
    return 0 if problem is None else 1


if __name__ == "__main__":
    sys.exit(main())
