"""The small shared mechanisms: Backoff, RestartIntensity, RecentIds, the /proc reader."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flower_actors.runtime.proc import memory_kb, process_alive, read_stat, session_processes
from flower_actors.runtime.recent_ids import RecentIds
from flower_actors.runtime.retry import Backoff, RestartIntensity


def test_backoff_doubles_with_jitter_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(base=0.1, max_delay=0.5)
    delays = [backoff.failed() for _ in range(6)]
    nominal = [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal, strict=True))
    assert not backoff.worth_logging() and backoff.failures == 6
    backoff.reset()
    assert backoff.failed() <= 0.1 and backoff.worth_logging()


def test_restart_intensity_backs_off_then_gives_up_and_progress_resets_it() -> None:
    intensity = RestartIntensity(max_restarts=3, period=10.0, base_delay=0.1, max_delay=0.3)
    assert [intensity.died(t) for t in (0.0, 0.1, 0.2)] == [0.1, 0.2, 0.3]
    assert intensity.died(0.3) is None and intensity.recent == 0
    assert intensity.died(1.0) == 0.1
    intensity.progressed()
    assert intensity.died(1.1) == 0.1
    assert intensity.died(20.0) == 0.1, "deaths older than the period are forgotten"


def test_recent_ids_remembers_the_last_ones() -> None:
    ids = RecentIds(2)
    assert ids.add("a") and not ids.add("a") and ids.add("b") and ids.add("c")
    assert "a" not in ids and "b" in ids and len(ids) == 2
    with pytest.raises(ValueError):
        RecentIds(0)


def test_proc_reads_this_process_and_a_reaped_child() -> None:
    stat = read_stat(os.getpid())
    assert stat is not None and stat.session == os.getsid(0) and stat.state in "RS"
    assert os.getpid() in session_processes(os.getsid(0))
    assert memory_kb(os.getpid())["pss_kb"] > 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid) and read_stat(child.pid) is None
