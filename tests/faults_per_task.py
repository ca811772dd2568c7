"""``python -m tests.faults_per_task DEPTH``: run a node DEPTH calls deep; print its page faults per task.

Where CPython's frame-stack chunks end in an actor process depends on how
deep the program that started the actor system was when it did: every actor
is forked from a parent inside its own loop. A test runs this at several
depths (see ``tests/runtime/test_frame_stack.py``).
"""

from __future__ import annotations

import sys

from flower_actors import NodeConfig, SystemConfig, TaskIns, run_node
from flower_actors.runtime.proc import read_stat


def measure(tasks: int = 150) -> float:
    with run_node(NodeConfig(app="tests.apps:Sleeper", long_poll=True), system=SystemConfig()) as node:
        driver = node.driver("faults")
        pid = driver.run([TaskIns.create("w", 0)], 30)[0].handler_pid
        for _ in range(20):  # warm: its heap has grown to what it needs
            driver.run([TaskIns.create("w", 0)], 30)
        assert pid is not None
        before = read_stat(pid)
        for _ in range(tasks):
            driver.run([TaskIns.create("w", 0)], 30)
        after = read_stat(pid)
        assert before is not None and after is not None
        return (after.minor_faults - before.minor_faults) / tasks


def at_depth(depth: int) -> float:
    return measure() if depth <= 0 else at_depth(depth - 1)


if __name__ == "__main__":
    print(f"{at_depth(int(sys.argv[1])):.2f}")
