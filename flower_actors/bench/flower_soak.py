"""``flower-soak``: concurrent runs on ``flower-actors-supernode`` whose ClientApp raises and exits now and then.

4 runs at once x 10 rounds x 5 messages (``--quick``: 2 x 4 x 5), the
ClientApp raising in 5% of messages and ending its process (``os._exit``)
in 2%. Passes when every run completes, its ServerApp saw every message
answered exactly once (``fa_soak``), the node answered as many messages as
were sent and had none refused, the memory of the node's long-lived
processes (those alive from the first sample to the last) is flat from the
first to the last quarter (within 10% or 8 MB), and after SIGTERM nothing
of the node is left.
"""

from __future__ import annotations

import json
import re
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flower_actors.tools import FlwrCli, SuperLinkProcess, SuperNodeProcess, process_alive, pss_kb

__all__ = ["flower_soak"]

APP = Path(__file__).with_name("soak_app")
SAMPLE_S = 0.5
GROWTH_LIMIT = (0.10, 8 * 1024)
"""The long-lived processes' PSS may grow by at most 10% or 8 MB (KiB) from the first to the last quarter."""


def _memory_growth(samples: list[dict[int, int]]) -> tuple[int, int]:
    """(first quarter, last quarter) mean PSS in KiB of the processes alive in every sample."""
    lasting = set(samples[0]).intersection(*samples[1:])
    totals = [sum(s[p] for p in lasting) for s in samples]
    quarter = max(1, len(totals) // 4)
    return sum(totals[:quarter]) // quarter, sum(totals[-quarter:]) // quarter


def flower_soak(quick: bool) -> list[dict[str, Any]]:
    """One soak on our node (see the module docstring); one row."""
    runs, rounds, per_round = (2, 4, 5) if quick else (4, 10, 5)
    with tempfile.TemporaryDirectory(prefix="fa-bench-soak-") as tmp:
        workdir = Path(tmp)
        superlink = SuperLinkProcess(workdir / "superlink").start()
        node = SuperNodeProcess(workdir, superlink.address, extra=["--heartbeat-interval", "10"])
        try:
            node.start()
            node.wait_joined()
            cli = FlwrCli(workdir, superlink.address)
            samples: list[dict[int, int]] = []
            done = threading.Event()

            def sample() -> None:
                while not done.wait(SAMPLE_S):
                    samples.append({pid: pss_kb(pid) for pid in node.processes()})

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
            records = [json.loads(out.read_text()) if out.exists() else {} for out in outs]
            pids = set().union(*samples) if samples else set()
            node.signal(signal.SIGTERM)
            status = node.wait(60)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and [p for p in pids if process_alive(p)]:
                time.sleep(0.1)
            left = [p for p in pids if process_alive(p)]
            answered = re.findall(
                r"answered (\d+) message\(s\) \((\d+) error replies, (\d+) refused\)", node.log_text()
            )
        finally:
            node.stop()
            superlink.stop()
    sent = runs * rounds * per_round
    first, last = _memory_growth(samples) if len(samples) >= 4 else (0, 0)
    codes: dict[str, int] = {}
    for record in records:
        for code, n in record.get("codes", {}).items():
            codes[code] = codes.get(code, 0) + n
    node_answered, node_errors, refused = (int(v) for v in answered[-1]) if answered else (0, 0, -1)
    checks = {
        "every run completed": all(i.get("status") == "finished:completed" for i in infos),
        "every message answered once (ServerApp)": sum(r.get("answered", 0) for r in records) == sent
        and not any(r.get("twice") or r.get("unanswered") for r in records),
        "every message answered once (node)": node_answered == sent and refused == 0,
        "memory flat": last - first <= max(GROWTH_LIMIT[0] * first, GROWTH_LIMIT[1]),
        "clean stop, nothing left": status == 0 and not left,
    }
    return [
        {
            "scenario": "flower-soak",
            "system": "flower-actors-supernode",
            "runs": runs,
            "rounds": rounds,
            "tasks": sent,
            "results": node_answered,
            "errors": node_errors,
            "replies_by_code": dict(sorted(codes.items())),
            "makespan_s": round(wall, 1),
            "pss_first_quarter_mb": round(first / 1024, 1),
            "pss_last_quarter_mb": round(last / 1024, 1),
            "left_after_stop": len(left),
            "checks": checks,
            "passed": all(checks.values()),
        }
    ]
