"""The benchmark scenarios; each runs every system it applies to and returns one row per system."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

from flower_actors import LocalFederation
from flower_actors.tools import (
    TraceSpec,
    cpu_ms,
    fed_trace,
    forward_gaps,
    lower_bound,
    percentile,
    pss_kb,
    read_stat,
    summary,
)

from .flower import flower
from .flower_soak import flower_soak
from .systems import RunResult, run_ours, run_raw_processes, run_thread_pool
from .work import Job, Record, calibrate_spin

__all__ = ["SCENARIOS", "Row"]

Row = dict[str, Any]


def forward(records: Sequence[Record]) -> list[float]:
    """Forward latency, by the same rule as ours (``stats.forward_gaps``)."""
    return forward_gaps((r.workload, r.visible, r.started, r.finished) for r in records)


def result(records: Sequence[Record]) -> list[float]:
    """From each handler's end to the collector (the server, for ours) having the result."""
    return [max(0.0, r.collected - r.finished) for r in records]


def _errors(run: RunResult) -> int:
    return sum(1 for r in run.records if not r.ok) + int(run.extra.get("errors", 0) or 0)


def _row(scenario: str, system: str, run: RunResult, jobs: int, **metrics: Any) -> Row:
    return {
        "scenario": scenario,
        "system": system,
        "tasks": jobs,
        "results": len(run.records),
        "errors": _errors(run),
        "makespan_s": round(run.makespan, 3),
        **metrics,
    }


def _cpu_and_faults(pids: Sequence[int]) -> dict[str, Any]:
    """Median CPU time (``/proc/<pid>/schedstat``) and minor page faults of these processes so far."""
    cpu: list[float] = []
    faults: list[int] = []
    for pid in pids:
        ms, stat = cpu_ms(pid), read_stat(pid)
        if ms is not None and stat is not None:
            cpu.append(ms)
            faults.append(stat.minor_faults)
    return {
        "cpu_ms_per_client": round(percentile(cpu, 50) or 0.0, 2) if cpu else None,
        "minor_faults_per_client": int(percentile(faults, 50) or 0) if faults else None,
    }


# 1. fed


def _fed_jobs(spec: TraceSpec) -> list[Job]:
    return [Job(t.index, t.at, t.workload_id, "sleep", spec.work) for t in fed_trace(spec)]


def _thread_pool_in_background(jobs: list[Job], poll: float | None) -> Callable[[], RunResult]:
    """Start the thread-pool run in its own process (its handlers only sleep); return a joiner."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.SimpleQueue()

    def target() -> None:
        queue.put(run_thread_pool(jobs, poll=poll))

    proc = ctx.Process(target=target, daemon=True)
    proc.start()

    def join() -> RunResult:
        outcome: RunResult = queue.get()
        proc.join(10)
        return outcome

    return join


def fed(quick: bool) -> list[Row]:
    spec = TraceSpec(clients=20, tasks=80, gap=0.04, work=0.5) if quick else TraceSpec()
    jobs = _fed_jobs(spec)
    # The thread-pool design needs ~6x the lower bound; its handlers only sleep, so it runs alongside.
    thread_pool = _thread_pool_in_background(jobs, poll=1.0)
    rows = []
    for name, run, poll in (
        ("ours periodic", run_ours(jobs, long_poll=False, poll=1.0), 1.0),
        ("ours long-poll", run_ours(jobs, long_poll=True), None),
        ("raw-processes periodic", run_raw_processes(jobs, poll=1.0), 1.0),
        ("raw-processes immediate", run_raw_processes(jobs, poll=None), None),
        ("thread-pool periodic (FED)", thread_pool(), 1.0),
    ):
        bound = lower_bound(spec, poll)
        rows.append(
            _row(
                "fed",
                name,
                run,
                len(jobs),
                lower_bound_s=round(bound, 3),
                ratio_to_lower_bound=round(run.makespan / bound, 4),
            )
        )
    return rows


# 2. cpu


def cpu(quick: bool) -> list[Row]:
    iterations = calibrate_spin(0.25)
    workloads, per = (4, 2) if quick else (8, 4)
    jobs = [Job(i, 0.0, i % workloads, "cpu", iterations) for i in range(workloads * per)]
    runs = {
        "ours": run_ours(jobs, long_poll=True),
        "thread-pool": run_thread_pool(jobs, poll=None),
        "raw-processes": run_raw_processes(jobs, poll=None),
    }
    base = runs["thread-pool"].makespan
    return [
        _row(
            "cpu",
            name,
            run,
            len(jobs),
            speedup_vs_thread_pool=round(base / run.makespan, 3),
            spin_iterations=iterations,
        )
        for name, run in runs.items()
    ]


# 3. overhead


def overhead(quick: bool) -> list[Row]:
    """Cold (every process is created by the burst, as the issue asks), then with the processes running."""
    tasks, workloads = (1000, 50) if quick else (4000, 100)
    jobs = [Job(i, 0.0, i % workloads, "zero") for i in range(tasks)]
    warm_up = [Job(tasks + w, 0.0, w, "zero") for w in range(workloads)]
    runs = {
        "ours": run_ours(jobs, long_poll=True),
        "thread-pool": run_thread_pool(jobs, poll=None),
        "raw-processes": run_raw_processes(jobs, poll=None),
        "ours, processes running": run_ours(jobs, long_poll=True, warm_up=warm_up),
        "raw-processes, processes running": run_raw_processes(jobs, poll=None, warm_up=warm_up),
    }
    rows = []
    for name, run in runs.items():
        raw = runs["raw-processes, processes running" if "running" in name else "raw-processes"]
        rows.append(
            _row(
                "overhead",
                name,
                run,
                tasks,
                tasks_per_s=round(tasks / run.makespan, 1),
                ratio_to_raw=round(raw.makespan / run.makespan, 3),
            )
        )
    return rows


# 4. latency


def latency(quick: bool) -> list[Row]:
    tasks = 100 if quick else 400
    jobs = [Job(i, i * 0.01, i % 20, "sleep", 0.01) for i in range(tasks)]
    runs = {
        "ours periodic": run_ours(jobs, long_poll=False, poll=1.0),
        "ours long-poll": run_ours(jobs, long_poll=True),
        "thread-pool": run_thread_pool(jobs, poll=None),
        "raw-processes": run_raw_processes(jobs, poll=None),
    }
    return [
        _row(
            "latency",
            name,
            run,
            tasks,
            forward_ms=summary(forward(run.records)),
            result_ms=summary(result(run.records)),
        )
        for name, run in runs.items()
    ]


# 5. spawn


def _first_task_start(records: Sequence[Record]) -> list[float]:
    first: dict[int, Record] = {}
    for r in sorted(records, key=lambda r: r.started):
        first.setdefault(r.workload, r)
    return [r.started - r.visible for r in first.values()]


def spawn(quick: bool) -> list[Row]:
    workloads = 20 if quick else 60
    jobs = [Job(i, i * 0.05, i, "zero") for i in range(workloads)]
    runs = {"ours": run_ours(jobs, long_poll=True), "raw-processes": run_raw_processes(jobs, poll=None)}
    return [
        _row("spawn", name, run, workloads, spawn_ms=summary(_first_task_start(run.records)))
        for name, run in runs.items()
    ]


# 6. memory


def memory(quick: bool) -> list[Row]:
    workloads = 30 if quick else 100
    jobs = [Job(i, 0.0, i, "zero") for i in range(workloads)]

    def ours_memory(node: LocalFederation) -> dict[str, Any]:
        status = node.status()
        pss = [pss_kb(p) for p in status.handler_pids]
        return {
            "pss_per_client_mb": round(sum(pss) / max(1, len(pss)) / 1024, 2),
            "lead_client_pss_mb": round(pss_kb(status.pid) / 1024, 2),
            "clients_measured": len(pss),
            **_cpu_and_faults(status.handler_pids),
        }

    def raw_memory(pids: list[int]) -> dict[str, Any]:
        pss = [pss_kb(p) for p in pids]
        return {
            "pss_per_client_mb": round(sum(pss) / max(1, len(pss)) / 1024, 2),
            "clients_measured": len(pss),
            "lead_client_pss_mb": round(pss_kb(os.getpid()) / 1024, 2),
            **_cpu_and_faults(pids),
        }

    runs = {
        "ours": run_ours(jobs, long_poll=True, inspect=ours_memory),
        "raw-processes": run_raw_processes(jobs, poll=None, inspect=raw_memory),
    }
    keys = (
        "pss_per_client_mb",
        "lead_client_pss_mb",
        "clients_measured",
        "cpu_ms_per_client",
        "minor_faults_per_client",
    )
    return [_row("memory", name, run, workloads, **{k: run.extra.get(k) for k in keys}) for name, run in runs.items()]


# 7. scale


def scale(quick: bool) -> list[Row]:
    """Each system runs twice in a row and the second run is measured (the first is in ``first_run_s``).

    On a VM whose balloon reports free memory to the host (this one), memory
    freed a minute ago costs a host fault per page when touched again (2.1
    against 0.4 s per GiB). Run once each, raw processes always ran in the
    memory ours had just freed, and ours in whatever the machine held. Run
    twice, each measured run follows one of its own size.
    """
    workloads = 200 if quick else 1000
    jobs = [Job(i, 0.0, i, "zero") for i in range(workloads)]
    systems: dict[str, Callable[[], RunResult]] = {
        "ours": lambda: run_ours(jobs, long_poll=True),
        "raw-processes": lambda: run_raw_processes(jobs, poll=None),
    }
    rows = []
    for name, run_once in systems.items():
        first, run = run_once(), run_once()
        rows.append(
            _row(
                "scale",
                name,
                run,
                workloads,
                live_workloads=len({r.workload for r in run.records}),
                first_run_s=round(first.makespan, 3),
                first_run_results=len(first.records),
                first_run_errors=_errors(first),
            )
        )
    return rows


SCENARIOS: dict[str, Callable[[bool], list[Row]]] = {
    "fed": fed,
    "cpu": cpu,
    "overhead": overhead,
    "latency": latency,
    "spawn": spawn,
    "memory": memory,
    "scale": scale,
    "flower": flower,
    "flower-soak": flower_soak,
}
FLOWER_SCENARIOS = ("flower", "flower-soak")
"""Run only when named: they need the ``flower`` extra and start real SuperLinks."""
