"""Messages, error text, batches and the demo's figures, without any process."""

from __future__ import annotations

import pickle
from collections import deque

import pytest

from flower_actors.demo import ratio
from flower_actors.messages import TaskError, TaskIns, describe_exception, safe_text, take_batch
from flower_actors.stats import summary
from flower_actors.trace import TraceSpec, lower_bound


class Broken(Exception):
    def __str__(self) -> str:
        raise SystemExit(1)


class StrSubclass(str):
    pass


class SubclassMessage(Exception):
    def __str__(self) -> str:
        return StrSubclass("sub")


def test_error_text_never_trusts_the_exception() -> None:
    assert describe_exception(Broken()) == "Broken: <Broken object: __str__ failed>"
    error = TaskError.from_exception("HandlerError", SubclassMessage())
    assert type(error.message) is str and error.message == "SubclassMessage: sub"
    assert pickle.loads(pickle.dumps(error)) == error
    assert len(safe_text("x" * 100_000)) < 5000 and "characters cut" in safe_text("x" * 100_000)


def test_take_batch_bounds_items_and_bytes() -> None:
    queue = deque(TaskIns.create("w", b"x" * 1000) for _ in range(10))
    assert len(take_batch(queue, 3)) == 3
    assert len(take_batch(queue, 100, max_bytes=2500)) == 3
    assert len(take_batch(queue, 100, max_bytes=1)) == 1, "at least one, even if larger"
    assert len(take_batch(queue, 100)) == 3 and not queue and take_batch(queue, 5) == ()


@pytest.mark.parametrize("makespan,bound,expected", [(2.0, 1.0, 2.0), (1.0, 0.0, None), (None, 1.0, None)])
def test_ratio_has_no_meaning_without_a_bound(makespan: float, bound: float, expected: object) -> None:
    assert ratio(makespan, bound) == expected


def test_zero_work_trace_has_a_zero_bound_and_summaries_have_a_max() -> None:
    assert lower_bound(TraceSpec(10, 40, 0.0, 0.0, 0), None) == 0.0
    assert summary([0.001, 0.002, 0.003]) == {"p50": 2.0, "p99": 3.0, "max": 3.0}
    assert summary([]) == {"p50": None, "p99": None, "max": None}


def test_a_stamped_copy_is_what_dataclasses_replace_makes() -> None:
    import dataclasses

    from flower_actors import TaskIns
    from flower_actors.messages import TaskRes, dump_content

    for cls in (TaskIns, TaskRes):  # the fast copy holds only while every field goes through __init__
        assert not hasattr(cls, "__post_init__") and all(f.init for f in dataclasses.fields(cls))
    task = TaskIns.create("w", {"x": 1})
    assert task.content == {"x": 1}  # cached
    pulled = task._copy_with({"pulled_at": 5.0})
    assert pulled == dataclasses.replace(task, pulled_at=5.0) and pulled is not task and task.pulled_at is None
    assert "_content" not in vars(pulled) and pulled.content == {"x": 1}
    result = TaskRes.answer(task, payload=dump_content("ok"))
    assert result.stamped(pushed_at=1.0, stored_at=2.0) == dataclasses.replace(result, pushed_at=1.0, stored_at=2.0)
    with pytest.raises(TypeError, match="not timing fields"):
        result.stamped(payload=None)  # type: ignore[arg-type]


def test_ids_are_unique_hex_and_a_forked_child_never_repeats_its_parents() -> None:
    import os

    from flower_actors.messages import new_id

    mine = [new_id() for _ in range(5000)]
    assert len(set(mine)) == len(mine)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in mine)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the ids it makes next, then it exits at once
        try:
            os.write(write, "".join(new_id() for _ in range(200)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read().decode()
    os.waitpid(pid, 0)
    theirs = {data[i : i + 32] for i in range(0, len(data), 32)}
    ours_next = {new_id() for _ in range(200)}
    assert len(theirs) == 200 and not theirs & ours_next and not theirs & set(mine)


def test_an_answer_is_what_the_dataclass_would_build() -> None:
    import dataclasses

    from flower_actors import TaskIns
    from flower_actors.messages import TaskError, TaskRes, dump_content

    task = TaskIns.create("w", 1)._copy_with({"pulled_at": 3.0, "node_id": "n"})
    for kwargs in (
        {"payload": dump_content(2), "started_at": 4.0, "finished_at": 5.0, "handler_pid": 7},
        {"error": TaskError("handler_error", "boom")},
    ):
        fast = TaskRes.answer(task, **kwargs)  # type: ignore[arg-type]
        built = TaskRes(**{f.name: getattr(fast, f.name) for f in dataclasses.fields(TaskRes)})
        assert fast == built and vars(fast) == vars(built), "every field set"
        assert (fast.ins_id, fast.workload_id, fast.node_id, fast.created_at) == (
            task.task_id,
            "w",
            "n",
            task.created_at,
        )
        assert fast.pushed_at is None and fast.stored_at is None and fast.finished_at is not None
