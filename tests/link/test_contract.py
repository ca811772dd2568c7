"""The server link's contract, written once and run on every implementation.

``NodeLinkContract`` checks what a node relies on (pull, push); each
implementation adds how to queue items for a node and how to read what was
stored. The driver-side contract runs where an implementation has one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from flower_actors import EmbeddedServer, StopWorkload, SystemConfig, TaskIns, TaskRes, start_actor_system
from flower_actors.link import (
    CollectTaskRes,
    DriverLink,
    NodeLink,
    PullTaskIns,
    PushTaskRes,
    SubmitTaskIns,
    TaskInsAccepted,
    TaskInsBatch,
    TaskResAck,
    TaskResBatch,
)
from flower_actors.runtime.system import ActorSystemHandle
from tests.scripted_server import GetPushed, Pushed, ScriptBatch, ScriptedServer


class NodeLinkContract:
    """What every server answers on the node side (``flower_actors.link.NodeLink``)."""

    __test__ = False
    implementation: ClassVar[type]

    @pytest.fixture
    def system(self) -> Iterator[ActorSystemHandle]:
        handle = start_actor_system(SystemConfig())
        try:
            yield handle
        finally:
            handle.shutdown()

    @pytest.fixture
    def server(self, system: ActorSystemHandle) -> Any:
        return system.system.createActor(self.implementation)

    def enqueue(self, system: ActorSystemHandle, server: Any, items: list[Any]) -> None:
        raise NotImplementedError

    def stored(self, system: ActorSystemHandle, server: Any) -> list[TaskRes]:
        raise NotImplementedError

    @staticmethod
    def ask(system: ActorSystemHandle, server: Any, message: Any, expected: type, timeout: float = 10.0) -> Any:
        reply = system.system.ask(server, message, timeout)
        assert isinstance(reply, expected), f"{type(message).__name__} got {reply!r}"
        return reply

    # The contract.

    def test_it_implements_the_protocol(self) -> None:
        assert issubclass(self.implementation, NodeLink)

    def test_a_pull_with_nothing_queued_answers_empty_with_its_request_id(
        self, system: ActorSystemHandle, server: Any
    ) -> None:
        batch = self.ask(system, server, PullTaskIns(0, 7, 10, 0.0), TaskInsBatch)
        assert batch.request_id == 7 and tuple(batch.tasks) == ()

    def test_pulls_hand_out_the_nodes_items_in_order_once_and_at_most_max_tasks(
        self, system: ActorSystemHandle, server: Any
    ) -> None:
        tasks = [TaskIns.create("w", i) for i in range(3)]
        self.enqueue(system, server, tasks)
        first = self.ask(system, server, PullTaskIns(0, 1, 2, 0.0), TaskInsBatch)
        second = self.ask(system, server, PullTaskIns(0, 2, 10, 0.0), TaskInsBatch)
        third = self.ask(system, server, PullTaskIns(0, 3, 10, 0.0), TaskInsBatch)
        assert [t.task_id for t in first.tasks] == [t.task_id for t in tasks[:2]]
        assert [t.task_id for t in second.tasks] == [tasks[2].task_id]
        assert tuple(third.tasks) == ()

    def test_a_stop_stays_in_order_with_the_tasks_around_it(self, system: ActorSystemHandle, server: Any) -> None:
        before, after = TaskIns.create("w", 1), TaskIns.create("w", 2)
        self.enqueue(system, server, [before, StopWorkload("w"), after])
        batch = self.ask(system, server, PullTaskIns(0, 1, 10, 0.0), TaskInsBatch)
        items = list(batch.tasks)
        assert [type(i).__name__ for i in items] == ["TaskIns", "StopWorkload", "TaskIns"]
        assert items[0].task_id == before.task_id and items[2].task_id == after.task_id

    def test_a_long_poll_is_answered_within_its_wait(self, system: ActorSystemHandle, server: Any) -> None:
        start = time.monotonic()
        batch = self.ask(system, server, PullTaskIns(0, 5, 10, 0.5), TaskInsBatch)
        assert batch.request_id == 5 and time.monotonic() - start < 0.5 + 2.0

    def test_a_push_is_acknowledged_and_a_repeated_result_stored_once(
        self, system: ActorSystemHandle, server: Any
    ) -> None:
        task = TaskIns.create("w", 1)
        self.enqueue(system, server, [task])
        self.ask(system, server, PullTaskIns(0, 1, 10, 0.0), TaskInsBatch)
        result = TaskRes.answer(task, payload=b"x")
        ack = self.ask(system, server, PushTaskRes(11, (result,)), TaskResAck)
        again = self.ask(system, server, PushTaskRes(12, (result,)), TaskResAck)
        assert (ack.request_id, again.request_id) == (11, 12) and ack.stored_at > 0
        assert [r.ins_id for r in self.stored(system, server)] == [task.task_id]


class TestEmbeddedServer(NodeLinkContract):
    __test__ = True
    implementation = EmbeddedServer

    def enqueue(self, system: ActorSystemHandle, server: Any, items: list[Any]) -> None:
        wrapped = tuple((0, i) if isinstance(i, StopWorkload) else i for i in items)
        reply = self.ask(system, server, SubmitTaskIns("contract", 1, wrapped), TaskInsAccepted)
        assert not reply.rejected

    def stored(self, system: ActorSystemHandle, server: Any) -> list[TaskRes]:
        return list(self.ask(system, server, CollectTaskRes("contract", 99), TaskResBatch).results)

    # The driver side.

    def test_it_implements_the_driver_protocol(self) -> None:
        assert issubclass(self.implementation, DriverLink)

    def test_a_repeated_task_id_is_refused_and_results_go_to_their_own_driver(
        self, system: ActorSystemHandle, server: Any
    ) -> None:
        mine, theirs = TaskIns.create("w", 1), TaskIns.create("w", 2)
        self.ask(system, server, SubmitTaskIns("me", 1, (mine,)), TaskInsAccepted)
        self.ask(system, server, SubmitTaskIns("them", 2, (theirs,)), TaskInsAccepted)
        repeated = self.ask(system, server, SubmitTaskIns("me", 3, (mine,)), TaskInsAccepted)
        assert repeated.rejected and repeated.rejected[0][0] == mine.task_id
        self.ask(system, server, PullTaskIns(0, 1, 10, 0.0), TaskInsBatch)
        results = (TaskRes.answer(mine, payload=b"1"), TaskRes.answer(theirs, payload=b"2"))
        self.ask(system, server, PushTaskRes(1, results), TaskResAck)
        got = self.ask(system, server, CollectTaskRes("me", 4, wait_s=1.0), TaskResBatch)
        assert [r.ins_id for r in got.results] == [mine.task_id] and got.request_id == 4


class TestScriptedServer(NodeLinkContract):
    __test__ = True
    implementation = ScriptedServer

    def enqueue(self, system: ActorSystemHandle, server: Any, items: list[Any]) -> None:
        self.ask(system, server, ScriptBatch(tuple(items)), ScriptBatch)

    def stored(self, system: ActorSystemHandle, server: Any) -> list[TaskRes]:
        return list(self.ask(system, server, GetPushed(), Pushed).results)
