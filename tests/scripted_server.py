"""A server actor for tests that hands out scripted batches (malformed ones too) and records pushes.

It implements ``NodeLink`` (``tests/link`` runs the link contract on it):
each pull gets the next scripted batch (at most ``max_tasks`` of it; the
rest waits for the next pull), each pushed result is stored once.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from thespian.actors import ActorAddress

from flower_actors.link import PullTaskIns, PushTaskRes, TaskInsBatch, TaskResAck
from flower_actors.messages import TaskRes
from flower_actors.runtime.actor_base import SafeActor
from flower_actors.runtime.recent_ids import RecentIds


@dataclass(frozen=True)
class ScriptBatch:
    """Queue ``items`` as the answer to one future pull (anything picklable, even nonsense)."""

    items: tuple[Any, ...]


@dataclass(frozen=True)
class GetPushed:
    """Ask for every result pushed so far."""


@dataclass(frozen=True)
class Pushed:
    results: tuple[TaskRes, ...]
    pulls: int


class ScriptedServer(SafeActor):
    def __init__(self) -> None:
        super().__init__()
        self.batches: deque[tuple[Any, ...]] = deque()
        self.pushed: list[TaskRes] = []
        self.stored = RecentIds(100_000)
        self.pulls = 0

    def receive_ScriptBatch(self, message: ScriptBatch, sender: ActorAddress) -> None:
        self.batches.append(message.items)
        self.send(sender, message)

    def receive_PullTaskIns(self, message: PullTaskIns, sender: ActorAddress) -> None:
        self.pulls += 1
        items = self.batches.popleft() if self.batches else ()
        if len(items) > max(1, message.max_tasks):
            items, rest = items[: max(1, message.max_tasks)], items[max(1, message.max_tasks) :]
            self.batches.appendleft(rest)
        self.send(sender, TaskInsBatch(message.request_id, items))

    def receive_PushTaskRes(self, message: PushTaskRes, sender: ActorAddress) -> None:
        self.pushed.extend(r for r in message.results if self.stored.add(getattr(r, "ins_id", id(r))))
        self.send(sender, TaskResAck(message.request_id, time.time()))

    def receive_GetPushed(self, message: GetPushed, sender: ActorAddress) -> None:
        self.send(sender, Pushed(tuple(self.pushed), self.pulls))
