"""Actor loops run in a roomy frame-stack chunk: no chunk is mapped and unmapped on every message."""

from __future__ import annotations

import pytest

from flower_actors.runtime import frame_stack
from tests.proctools import assert_none_left, marked_env, run_python


def test_a_roomy_call_returns_what_the_function_returns_and_raises_what_it_raises() -> None:
    assert frame_stack.run_in_roomy_chunk(lambda a, b: a + b, 2, 3) == 5
    assert frame_stack.ROOM_BYTES > 8 * 1024

    def fail() -> None:
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        frame_stack.run_in_roomy_chunk(fail)


def test_every_actor_loop_runs_roomy_once_secured() -> None:
    from thespian.system import actorManager

    from flower_actors import secure_thespian

    secure_thespian()
    frame_stack.steady_actor_stacks()  # a second time changes nothing
    run = actorManager.ActorManager.run
    assert getattr(run, "_flower_actors", False)
    assert not getattr(run.__closure__[0].cell_contents, "_flower_actors", False), "wrapped once, not twice"


@pytest.mark.parametrize("depth", [0, 7, 14, 21])
def test_a_workload_client_takes_few_page_faults_per_task_however_deep_its_system_was_started(depth: int) -> None:
    """Each message used to cross into a fresh chunk at some depths: about 17 page faults per task, one at a time."""
    env = marked_env()
    try:
        done = run_python(["-m", "tests.faults_per_task", str(depth)], env, timeout=120)
    finally:
        assert_none_left(env)
    assert done.returncode == 0, done.stderr[-2000:]
    per_task = float(done.stdout.split()[-1])
    assert per_task < 5, f"{per_task:.1f} page faults per task"
