"""``python -m flower_actors.demo``: the FED example trace on a real node.

Runs the trace of DESIGN.md through an embedded server and one LeadClient,
shows a progress bar, and prints a summary table; with ``--json`` the last
line of stdout is one JSON object with the measured figures.

In periodic mode the trace starts just before one of the node's pull ticks,
which is what the lower bound assumes (tasks become visible at multiples of
the poll interval from the trace's start); see ``trace.trace_start``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flower_actors import AppSpec, NodeConfig, SystemConfig, TaskIns, run_node, write_timeline
from flower_actors.tools import (
    FORMATS,
    SYSTEM_BASE,
    Progress,
    Replay,
    TraceSpec,
    add_log_level,
    add_version,
    at_least,
    configure_logging,
    exit_on_sigterm,
    fed_trace,
    forward_latencies,
    lower_bound,
    non_negative,
    positive,
    print_table,
    replay,
    result_latencies,
    summary,
    trace_start,
)

__all__ = ["main", "run_trace"]


def run_trace(
    spec: TraceSpec, config: NodeConfig, progress: Progress | None = None, timeline: str | None = None
) -> dict[str, Any]:
    """Run the trace on a fresh node and return the figures the demo reports (and draw it to ``timeline``)."""
    trace = fed_trace(spec)

    def show(submitted: int, seen: Replay) -> None:
        if progress:
            progress.update(len(seen.results), _note(submitted, seen))

    level = min(logging.WARNING, logging.getLogger().getEffectiveLevel())  # --log-level reaches the actors too
    with run_node(config, system=SystemConfig(stderr_level=level)) as node:
        driver = node.driver("fed-demo")
        t0 = trace_start(next(iter(node.started.values())).next_pull_at, config)
        schedule = [(item.at, TaskIns.create(item.workload_id, item.content, node_id=config.node_id)) for item in trace]
        seen = replay(driver, schedule, t0, timeout=lower_bound(spec, None) * 3 + 60, on_progress=show)
        status = node.status()
    if progress:
        progress.update(len(seen.results), _note(len(trace), seen), force=True)
        progress.close()
    results = seen.results
    if timeline:
        write_timeline(results, timeline, title="FED example trace on flower_actors")
    poll = None if config.long_poll else config.poll_interval
    makespan = seen.makespan
    bound = lower_bound(spec, poll)
    return {
        "makespan_s": None if makespan is None else round(makespan, 3),
        "lower_bound_s": round(bound, 3),
        "ratio": ratio(makespan, bound),
        "tasks": len(trace),
        "results": len(results),
        "errors": sum(1 for r in results if r.error is not None),
        "workloads": status.workloads_created,
        "trace_workloads": len({item.workload_id for item in trace}),
        "handler_processes": len({r.handler_pid for r in results if r.handler_pid is not None}),
        "forward_ms": summary(forward_latencies(results)),
        "result_ms": summary(result_latencies(results)),
        "mode": "long-poll" if config.long_poll else "periodic",
        "poll_s": poll,
        "base": SYSTEM_BASE,
        "trace": {"clients": spec.clients, "tasks": spec.tasks, "gap": spec.gap, "work": spec.work, "seed": spec.seed},
    }


def _note(submitted: int, seen: Replay) -> str:
    return f"{submitted} submitted, {sum(1 for r in seen.results if r.error)} errors"


def ratio(makespan: float | None, bound: float) -> float | None:
    """``makespan / bound``, or ``None`` where it has no meaning (no makespan, or a bound of 0)."""
    if makespan is None or bound <= 0:
        return None
    return round(makespan / bound, 4)


def _rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("mode", f"{report['mode']}" + (f" (poll {report['poll_s']} s)" if report["poll_s"] else "")),
        ("makespan", f"{report['makespan_s']} s"),
        ("lower bound", f"{report['lower_bound_s']} s (ratio {report['ratio']})"),
        ("results / tasks", f"{report['results']} / {report['tasks']} ({report['errors']} errors)"),
        ("workloads", f"{report['workloads']} WorkloadClients, {report['handler_processes']} handler processes"),
        ("forward latency", f"p50 {report['forward_ms']['p50']} ms, p99 {report['forward_ms']['p99']} ms"),
        (
            "result latency",
            f"p50 {report['result_ms']['p50']} ms, p99 {report['result_ms']['p99']} ms, "
            f"max {report['result_ms']['max']} ms",
        ),
        ("actor system", report["base"]),
    ]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m flower_actors.demo", description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=at_least(1), default=100, help="workloads in the trace (default 100)")
    p.add_argument("--tasks", type=at_least(1), default=400, help="tasks in the trace (default 400)")
    p.add_argument("--gap", type=non_negative, default=0.04, help="seconds between tasks (default 0.04)")
    p.add_argument("--work", type=non_negative, default=2.0, help="seconds each handler sleeps (default 2.0)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the trace (default 0)")
    pulling = p.add_mutually_exclusive_group()
    pulling.add_argument("--poll", type=positive(float), default=None, help="seconds between pulls (default 1.0)")
    pulling.add_argument("--long-poll", action="store_true", help="pull continuously; tasks arrive within milliseconds")
    p.add_argument("--json", action="store_true", help="print only one JSON object on stdout (the table on stderr)")
    p.add_argument(
        "--timeline",
        metavar="FILE",
        help="draw every task on its workload's lane: .json (Chrome trace, opens in Perfetto), .png or .svg "
        "(these need the plot extra: pip install 'flower_actors[plot]')",
    )
    add_log_level(p)
    add_version(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m flower_actors.demo``."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.timeline and Path(args.timeline).suffix.lower() not in FORMATS:
        parser.error(f"argument --timeline: {args.timeline!r} must end in {', '.join(FORMATS)}")
    configure_logging(args.log_level, "demo")
    exit_on_sigterm()
    try:
        spec = TraceSpec(args.clients, args.tasks, args.gap, args.work, args.seed)
        config = NodeConfig(
            node_id=0,
            app=AppSpec("flower_actors.examples:FedExampleClient", {"work": args.work}),
            poll_interval=args.poll or 1.0,
            long_poll=args.long_poll,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with Progress(spec.tasks) as progress:
            report = run_trace(spec, config, progress, timeline=args.timeline)
    except KeyboardInterrupt:
        print("interrupted; every process of the demo was stopped", file=sys.stderr)
        return 130
    table = sys.stderr if args.json else sys.stdout  # with --json, stdout holds only the JSON object
    print_table("FED example trace on flower_actors", _rows(report), stream=table)
    if args.json:
        print(json.dumps(report))
    return 0 if report["results"] == report["tasks"] else 1


if __name__ == "__main__":
    sys.exit(main())
