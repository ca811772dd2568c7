"""Messages that carry many tasks or results pickle them as rows and come back equal."""

from __future__ import annotations

import pickle

import pytest

from flower_actors.control import StopWorkload
from flower_actors.errors import ErrorKind
from flower_actors.link.protocol import PushTaskRes, SubmitTaskIns, TaskInsBatch, TaskResBatch
from flower_actors.messages import TaskError, TaskIns, TaskRes
from flower_actors.node.wire import RunTasks, TaskResGroup
from flower_actors.rows import pack, unpack


def _tasks(count: int) -> tuple[TaskIns, ...]:
    return tuple(TaskIns.create(i % 3, {"i": i}, deadline_s=5.0 if i % 2 else None) for i in range(count))


def _results(tasks: tuple[TaskIns, ...]) -> tuple[TaskRes, ...]:
    error = TaskError(ErrorKind.HANDLER_ERROR, "boom", exception_type="ValueError")
    return tuple(
        TaskRes.answer(t, payload=None if i % 2 else b"\x80\x05N.", error=error if i % 2 else None, handler_pid=7)
        for i, t in enumerate(tasks)
    )


def _round_trip(message: object) -> object:
    return pickle.loads(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


@pytest.mark.parametrize("count", [0, 1, 40])
def test_every_carrier_comes_back_equal_with_its_items_whole(count: int) -> None:
    tasks = _tasks(count)
    results = _results(tasks)
    for message in (
        SubmitTaskIns("driver", 1, tasks),
        TaskInsBatch(2, tasks),
        RunTasks(tasks, report=False),
        TaskResGroup(results),
        PushTaskRes(3, results),
        TaskResBatch(4, results),
    ):
        back = _round_trip(message)
        assert back == message and type(back) is type(message)
        items = vars(back).get("tasks", vars(back).get("results"))
        assert type(items) is tuple
        for item, original in zip(items, vars(message).get("tasks", vars(message).get("results")), strict=True):
            assert vars(item) == {k: v for k, v in vars(original).items() if k != "_content"}
            assert item.content == original.content  # the payload unpickles, and the cache is rebuilt


def test_items_are_rows_of_field_values_and_a_cached_content_is_left_out() -> None:
    tasks = _tasks(3)
    _ = tasks[0].content  # caches it in the instance
    packed = pack(tasks)
    assert packed is not None
    kind, rows = packed
    assert rows[0] == (
        tasks[0].task_id,
        tasks[0].node_id,
        tasks[0].workload_id,
        "",
        tasks[0].payload,
        tasks[0].created_at,
        None,
        None,
    )
    assert unpack(kind, rows) == tasks


@pytest.mark.parametrize("field", [None, "abc", 7, (x for x in ())])
def test_a_field_that_is_no_tuple_or_list_is_left_to_pickle(field: object) -> None:
    assert pack(field) is None
    if isinstance(field, (str, int)) or field is None:  # what the receiver's own check reports on
        assert _round_trip(TaskInsBatch(1, field)) == TaskInsBatch(1, field)  # type: ignore[arg-type]
    else:  # as before: a generator cannot be pickled, and is not consumed trying
        with pytest.raises(TypeError):
            pickle.dumps(TaskInsBatch(1, field))  # type: ignore[arg-type]


def test_a_mixed_or_foreign_collection_goes_item_by_item() -> None:
    class MyTask(TaskIns):
        pass

    tasks = _tasks(2)
    mine = MyTask(**vars(tasks[0]))
    with_stop = (*tasks, StopWorkload(1))
    assert pack(with_stop) is None and pack((*tasks, mine)) is None and pack([object()]) is None
    batch = TaskInsBatch(5, with_stop)
    assert _round_trip(batch) == batch


def test_an_item_missing_a_field_goes_as_it_is_and_is_still_refused_where_it_is_checked() -> None:
    broken = TaskIns.__new__(TaskIns)
    object.__setattr__(broken, "task_id", "x")
    assert pack((broken,)) is None
    back = _round_trip(SubmitTaskIns("driver", 1, (broken,)))
    assert isinstance(back, SubmitTaskIns) and vars(back.tasks[0]) == {"task_id": "x"}
