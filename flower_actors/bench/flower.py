"""``flower``: the same Flower app on ``flower-supernode`` and on ours, side by side, a fresh SuperLink each.

Cases: (a) 1 run x 2 rounds, no training; (b) 2 concurrent runs x 2 rounds,
3 s of training per message; (c) 6 concurrent runs, the same. Per system
and case: wall time (first ``flwr run`` to the last run's end), each run's
ServerApp time, the node's CPU seconds and peak PSS (all its processes,
sampled every 0.2 s: a process shorter than that is missed, which favours
flower-supernode's short-lived ``flwr-clientapp`` processes), and for ours
the per-message overhead (pulled to reply stored, minus the ClientApp's
time). The ServerApp checks for replies right after sending and then every
3 s, so a round costs at least 3 s, or 6 s with 3 s of training: ``floor_s``.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flower_actors.tools import FlwrCli, SuperLinkProcess, SuperNodeProcess, pss_kb, read_stat

__all__ = ["CASES", "flower"]

APP = Path(__file__).with_name("flower_app")
CASES = {"a": (1, 0.0), "b": (2, 3.0), "c": (6, 3.0)}
"""case -> (concurrent runs, training seconds per message); 2 rounds each."""
ROUNDS = 2
POLL_S = 3.0
SYSTEMS = ("flower-supernode", "flower-actors-supernode")
TICKS = 100.0


class _Sampler(threading.Thread):
    """Peak PSS and CPU of a node's processes, sampled every 0.2 s."""

    def __init__(self, processes: Any) -> None:
        super().__init__(daemon=True)
        self.processes = processes
        self.cpu_ticks: dict[int, int] = {}
        self.peak_pss_kb = 0
        self.done = threading.Event()

    def sample(self) -> None:
        pids = self.processes()
        total = 0
        for pid in pids:
            total += pss_kb(pid)
            stat = read_stat(pid)
            if stat is not None:
                self.cpu_ticks[pid] = max(self.cpu_ticks.get(pid, 0), stat.utime + stat.stime)
        self.peak_pss_kb = max(self.peak_pss_kb, total)

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.sample()

    def cpu_s(self, since: dict[int, int]) -> float:
        return sum(t - since.get(pid, 0) for pid, t in self.cpu_ticks.items()) / TICKS


def _floor(train_s: float) -> float:
    """Least ServerApp time of ROUNDS rounds whatever the node (replies are checked every POLL_S)."""
    return ROUNDS * POLL_S * max(1, math.ceil((train_s + 1e-3) / POLL_S))


def _case(system: str, case: str, workdir: Path) -> dict[str, Any]:
    runs, train_s = CASES[case]
    superlink = SuperLinkProcess(workdir / "superlink").start()
    node = SuperNodeProcess(workdir, superlink.address, flower=system == "flower-supernode")
    try:
        node.start()
        node.wait_joined()
        time.sleep(1.0)  # let start-up settle (warm pool, imports)
        cli = FlwrCli(workdir, superlink.address)
        sampler = _Sampler(node.processes)
        sampler.sample()
        base = dict(sampler.cpu_ticks)
        sampler.peak_pss_kb = 0
        sampler.start()
        began = time.monotonic()
        ids: list[int] = []
        infos: list[dict[str, Any]] = []
        errors: list[str] = []

        def one() -> None:
            try:
                run_id = cli.run(APP, {"rounds": ROUNDS, "train-s": train_s})
                ids.append(run_id)
                infos.append(cli.wait(run_id, timeout=600))
            except Exception as exc:  # reported in the row
                errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=one) for _ in range(runs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sampler.done.set()
        sampler.join()
        sampler.sample()
        wall = max((i["ended_at"] for i in infos), default=time.monotonic()) - began
        completed = [i for i in infos if i.get("status") == "finished:completed"]
        row: dict[str, Any] = {
            "scenario": "flower",
            "system": system,
            "case": case,
            "runs": runs,
            "train_s": train_s,
            "tasks": runs,
            "results": len(completed),
            "errors": runs - len(completed),
            "makespan_s": round(wall, 2),
            "serverapp_s": sorted(round(float(i.get("elapsed", 0.0)), 2) for i in infos),
            "floor_s": _floor(train_s),
            "node_cpu_s": round(sampler.cpu_s(base), 2),
            "node_peak_pss_mb": round(sampler.peak_pss_kb / 1024, 1),
            "failures": errors + [str(i.get("status")) for i in infos if i not in completed],
        }
        node.stop()  # ours logs its per-message overhead as it stops
        if system == "flower-actors-supernode":
            row["overhead_ms"] = _overhead(node.log_text())
        return row
    finally:
        node.stop()
        superlink.stop()


def _overhead(log: str) -> dict[str, float] | None:
    """The per-message overhead our node logs when it stops."""
    import re

    found = re.findall(r"overhead per message: p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms", log)
    if not found:
        return None
    p50, p99, top = (float(v) for v in found[-1])
    return {"p50": p50, "p99": p99, "max": top}


def flower(quick: bool) -> list[dict[str, Any]]:
    """Each case on both systems (``quick``: case a only), then the ratios ours / flower-supernode."""
    rows: list[dict[str, Any]] = []
    cases = ["a"] if quick else list(CASES)
    with tempfile.TemporaryDirectory(prefix="fa-bench-flower-") as tmp:
        for case in cases:
            for system in SYSTEMS:
                rows.append(_case(system, case, Path(tmp) / f"{case}-{system}"))
    by = {(r["system"], r["case"]): r for r in rows}
    for case in cases:
        ours, theirs = by[(SYSTEMS[1], case)], by[(SYSTEMS[0], case)]
        for key in ("makespan_s", "node_cpu_s", "node_peak_pss_mb"):
            ours[f"{key}_ratio"] = round(ours[key] / theirs[key], 3) if theirs[key] else None
    return rows
