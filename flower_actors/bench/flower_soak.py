"""``flower-soak``: concurrent runs on ``flower-actors-supernode`` whose ClientApp raises and exits now and then.

4 runs at once x 10 rounds x 5 messages (``--quick``: 2 x 4 x 5), the
ClientApp raising in 5% of messages and ending its process (``os._exit``)
in 2%. A warm-up wave of the same runs x 2 rounds goes first, unsampled:
the first messages import flwr's message code and grow allocator arenas
once (~20 MB in one actor process, then flat), which is start-up, not a leak.

Passes when every run completes, its ServerApp saw every message answered
exactly once (``fa_soak``), the node answered every message (soak and
warm-up) with none refused, the private memory (USS) of the node's
long-lived processes (those alive from the first sample to the last; PSS
would move with every process that starts or ends) is flat from the first
to the last quarter (within 10% or 8 MB), and after SIGTERM nothing of the
node is left.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flower_actors.tools import FlwrCli, SuperLinkProcess, SuperNodeProcess, memory_kb, process_alive

__all__ = ["flower_soak"]

APP = Path(__file__).with_name("soak_app")
SAMPLE_S = 0.5
WARM_UP_ROUNDS = 2
ANSWERED = r"answered (\d+) message\(s\) \((\d+) error replies, (\d+) refused\)"
GROWTH_LIMIT = (0.10, 8 * 1024)
"""The long-lived processes' private memory may grow by at most 10% or 8 MB (KiB) from the first to the last quarter."""


def _memory_growth(samples: list[dict[int, int]]) -> tuple[int, int]:
    """(first quarter, last quarter) mean private memory (USS) in KiB of the processes alive in every sample."""
    lasting = set(samples[0]).intersection(*samples[1:])
    totals = [sum(s[p] for p in lasting) for s in samples]
    quarter = max(1, len(totals) // 4)
    return sum(totals[:quarter]) // quarter, sum(totals[-quarter:]) // quarter


def _notable(line: str) -> bool:
    """A node log line the soak reports: an error, or a task the LeadClient had to send again."""
    return " ERROR " in line or "sent again" in line


def _soak(workdir: Path, runs: int, rounds: int, per_round: int) -> dict[str, Any]:
    """Start a SuperLink and our node, soak them, stop the node with SIGTERM: what was seen."""
    superlink = SuperLinkProcess(workdir / "superlink").start()
    node = SuperNodeProcess(workdir, superlink.address, extra=["--heartbeat-interval", "10"])
    try:
        node.start()
        node.wait_joined()
        cli = FlwrCli(workdir, superlink.address)
        warm_up = [cli.run(APP, {"rounds": WARM_UP_ROUNDS, "per-round": per_round}) for _ in range(runs)]
        for run_id in warm_up:  # imports, FAB installs, allocator high-water marks: before the first sample
            cli.wait(run_id, timeout=900)
        samples: list[dict[int, int]] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(SAMPLE_S):
                samples.append({pid: memory_kb(pid)["uss_kb"] for pid in node.processes()})

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        began = time.monotonic()
        outs = [workdir / f"run-{i}.json" for i in range(runs)]
        config = {"rounds": rounds, "per-round": per_round}
        ids = [cli.run(APP, {**config, "out": str(out)}) for out in outs]
        infos = [cli.wait(run_id, timeout=900) for run_id in ids]
        wall = time.monotonic() - began
        done.set()
        sampler.join()
        pids = set().union(*samples) if samples else set()
        node.signal(signal.SIGTERM)
        status = node.wait(60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [p for p in pids if process_alive(p)]:
            time.sleep(0.1)
        return {
            "infos": infos,
            "records": [json.loads(out.read_text()) if out.exists() else {} for out in outs],
            "samples": samples,
            "wall": wall,
            "status": status,
            "left": [p for p in pids if process_alive(p)],
            "answered": re.findall(ANSWERED, node.log_text()),
            "error_lines": [line[:300] for line in node.log_text().splitlines() if _notable(line)],
        }
    finally:
        node.stop()
        superlink.stop()


def flower_soak(quick: bool) -> list[dict[str, Any]]:
    """One soak on our node (see the module docstring); one row. A failed soak keeps its logs."""
    runs, rounds, per_round = (2, 4, 5) if quick else (4, 10, 5)
    workdir = Path(tempfile.mkdtemp(prefix="fa-bench-soak-"))
    seen = _soak(workdir, runs, rounds, per_round)
    records, samples = seen["records"], seen["samples"]
    sent = runs * rounds * per_round
    first, last = _memory_growth(samples) if len(samples) >= 4 else (0, 0)
    codes: dict[str, int] = {}
    for record in records:
        for code, n in record.get("codes", {}).items():
            codes[code] = codes.get(code, 0) + n
    node_answered, node_errors, refused = (int(v) for v in seen["answered"][-1]) if seen["answered"] else (0, 0, -1)
    checks = {
        "every run completed": all(i.get("status") == "finished:completed" for i in seen["infos"]),
        "every message answered once (ServerApp)": sum(r.get("answered", 0) for r in records) == sent
        and not any(r.get("twice") or r.get("unanswered") for r in records),
        "every message answered once (node)": node_answered == sent + runs * WARM_UP_ROUNDS * per_round
        and refused == 0,
        "memory flat": last - first <= max(GROWTH_LIMIT[0] * first, GROWTH_LIMIT[1]),
        "clean stop, nothing left": seen["status"] == 0 and not seen["left"],
    }
    if all(checks.values()):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"flower-soak failed: its logs are kept in {workdir}", file=sys.stderr)
    return [
        {
            "scenario": "flower-soak",
            "system": "flower-actors-supernode",
            "runs": runs,
            "rounds": rounds,
            "tasks": sent,
            "results": node_answered - runs * WARM_UP_ROUNDS * per_round,
            "errors": node_errors,
            "replies_by_code": dict(sorted(codes.items())),
            "missing": [m for r in records for m in r.get("missing", [])],
            "makespan_s": round(seen["wall"], 1),
            "uss_first_quarter_mb": round(first / 1024, 1),
            "uss_last_quarter_mb": round(last / 1024, 1),
            "left_after_stop": len(seen["left"]),
            "node_notable_lines": seen["error_lines"][:10],
            "checks": checks,
            "passed": all(checks.values()),
        }
    ]
