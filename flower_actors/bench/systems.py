"""The three systems the benchmark runs, each taking the same jobs and returning ``Record``s.

- ``run_ours``: flower_actors through its public API (``run_node`` and a ``Driver``);
- ``run_thread_pool``: the FED's design, as the FED wrote it (asyncio router polling
  its inbox, one client per workload, one shared ``ThreadPoolExecutor()``);
- ``run_raw_processes``: one forked process per workload fed by a ``multiprocessing``
  pipe, results back over the same pipes to the parent, which collects them.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from flower_actors import AppSpec, LocalFederation, NodeConfig, SystemConfig, TaskIns, run_node
from flower_actors.tools import replay, trace_start

from .work import Job, Record, run_job

__all__ = ["RunResult", "run_ours", "run_raw_processes", "run_thread_pool"]


@dataclass
class RunResult:
    """Records of one run, its makespan (first job in → last result out), and extras."""

    records: list[Record]
    makespan: float
    extra: dict[str, Any] = field(default_factory=dict)


def _tick(at: float, poll: float | None) -> float:
    """When a job produced at ``at`` becomes visible to a router that polls every ``poll`` s."""
    return at if not poll else math.ceil(round(at / poll, 9)) * poll


# Ours.


def run_ours(
    jobs: Sequence[Job],
    *,
    long_poll: bool,
    poll: float = 1.0,
    inspect: Callable[[LocalFederation], dict[str, Any]] | None = None,
    timeout: float = 300.0,
    warm_up: Sequence[Job] = (),
    **node_options: Any,
) -> RunResult:
    """Run ``jobs`` on a fresh node (after ``warm_up``, not measured); ``inspect`` sees the node before it stops."""
    config = NodeConfig(
        app=AppSpec("flower_actors.bench.work:BenchClient"), long_poll=long_poll, poll_interval=poll, **node_options
    )
    extra: dict[str, Any] = {}
    with run_node(config, system=SystemConfig()) as node:
        driver = node.driver("bench")
        if warm_up:
            driver.run([TaskIns.create(j.workload, (j.index, j.kind, j.amount)) for j in warm_up], timeout)
        schedule = [(j.at, TaskIns.create(j.workload, (j.index, j.kind, j.amount))) for j in jobs]
        index_of = {task.task_id: job.index for (_, task), job in zip(schedule, jobs, strict=False)}
        t0 = trace_start(next(iter(node.started.values())).next_pull_at, config)
        seen = replay(driver, schedule, t0, timeout)
        if inspect is not None:
            extra.update(inspect(node))
        status = node.status()
    extra.update(errors=sum(1 for r in seen.results if r.error), workloads=status.workloads_created)
    records = [
        Record(
            index_of[r.ins_id],
            int(r.workload_id),
            r.pulled_at or 0.0,
            r.started_at or 0.0,
            r.finished_at or 0.0,
            r.stored_at or 0.0,
            r.handler_pid or 0,
            r.ok,
        )
        for r in seen.results
    ]
    return RunResult(records, seen.makespan or float("nan"), extra)


# The FED's design.


def run_thread_pool(jobs: Sequence[Job], *, poll: float | None, timeout: float = 600.0) -> RunResult:
    """The FED's Router/Client design; ``poll`` None routes at once instead of every ``poll`` s."""
    return asyncio.run(_thread_pool(jobs, poll, timeout))


async def _thread_pool(jobs: Sequence[Job], poll: float | None, timeout: float) -> RunResult:
    pool = ThreadPoolExecutor()  # Python's default size, as in the FED: min(32, cpu_count + 4)
    outbox: asyncio.Queue[tuple[Job, float, float, float]] = asyncio.Queue()
    inbox: list[Job] = []
    arrived = asyncio.Event()
    records: dict[int, Record] = {}
    loop = asyncio.get_running_loop()

    class Client:
        def __init__(self) -> None:
            self.inbox: asyncio.Queue[tuple[Job, float]] = asyncio.Queue()

        async def run(self) -> None:
            while True:
                job, visible = await self.inbox.get()

                def handler(job: Job = job) -> tuple[float, float]:
                    started = time.time()
                    run_job(job.index, job.kind, job.amount)
                    return started, time.time()

                started, finished = await loop.run_in_executor(pool, handler)
                await outbox.put((job, visible, started, finished))

    clients: dict[int, Client] = {}
    tasks: list[asyncio.Task[None]] = []

    async def router() -> None:
        while True:
            while inbox:
                job = inbox.pop(0)
                client = clients.get(job.workload)
                if client is None:
                    client = clients[job.workload] = Client()
                    tasks.append(asyncio.create_task(client.run()))
                await client.inbox.put((job, time.time()))
            if poll:
                await asyncio.sleep(poll)
            else:
                await arrived.wait()
                arrived.clear()

    async def collector() -> None:
        while len(records) < len(jobs):
            job, visible, started, finished = await outbox.get()
            records[job.index] = Record(job.index, job.workload, visible, started, finished, time.time(), os.getpid())

    t0 = time.time()
    routing = asyncio.create_task(router())
    collecting = asyncio.create_task(collector())
    for job in jobs:
        delay = t0 + job.at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        inbox.append(job)
        arrived.set()
    try:
        await asyncio.wait_for(collecting, timeout)
    finally:
        routing.cancel()
        for task in tasks:
            task.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
    end = max((r.collected for r in records.values()), default=t0)
    return RunResult(sorted(records.values(), key=lambda r: r.index), end - t0, {"threads": pool._max_workers})


# Hand-written processes.


def _raw_child(conn: Connection) -> None:
    while True:
        job = conn.recv()
        if job is None:
            return
        index, kind, amount = job
        started = time.time()
        run_job(index, kind, amount)
        conn.send((index, started, time.time(), os.getpid()))


def run_raw_processes(
    jobs: Sequence[Job],
    *,
    poll: float | None,
    inspect: Callable[[list[int]], dict[str, Any]] | None = None,
    timeout: float = 300.0,
    warm_up: Sequence[Job] = (),
) -> RunResult:
    """A forked process per workload, fed through a pipe; the parent routes and collects (after ``warm_up``)."""
    ctx = multiprocessing.get_context("fork")
    conns: dict[int, Connection] = {}
    procs: dict[int, Any] = {}
    workload_of: dict[Connection, int] = {}
    records: dict[int, Record] = {}
    visible: dict[int, float] = {}
    order = sorted(jobs, key=lambda j: _tick(j.at, poll))
    extra: dict[str, Any] = {}

    def start(workload: int) -> None:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_raw_child, args=(child,), daemon=True)
        proc.start()
        child.close()
        conns[workload], procs[workload] = parent, proc
        workload_of[parent] = workload

    t0 = time.time() + 0.02
    i = 0
    try:
        for job in warm_up:
            if job.workload not in conns:
                start(job.workload)
            conns[job.workload].send((job.index, job.kind, job.amount))
            conns[job.workload].recv()
        t0 = time.time() + 0.02
        deadline = t0 + timeout
        while len(records) < len(jobs) and time.time() < deadline:
            now = time.time()
            while i < len(order) and t0 + _tick(order[i].at, poll) <= now:
                job = order[i]
                i += 1
                if job.workload not in conns:
                    start(job.workload)
                visible[job.index] = time.time()
                conns[job.workload].send((job.index, job.kind, job.amount))
            until_next = (t0 + _tick(order[i].at, poll) - time.time()) if i < len(order) else 0.5
            for ready in wait(list(conns.values()), timeout=max(0.0, min(until_next, 0.5))):
                conn = ready if isinstance(ready, Connection) else None
                if conn is None:
                    continue
                index, started, finished, pid = conn.recv()
                records[index] = Record(index, workload_of[conn], visible[index], started, finished, time.time(), pid)
        if inspect is not None:
            extra.update(inspect([p.pid for p in procs.values()]))
    finally:
        for conn in conns.values():
            try:
                conn.send(None)
            except OSError:
                pass
        for proc in procs.values():
            proc.join(timeout=2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2.0)
        for conn in conns.values():
            conn.close()
    end = max((r.collected for r in records.values()), default=t0)
    extra["processes"] = len(procs)
    return RunResult(sorted(records.values(), key=lambda r: r.index), end - t0, extra)
