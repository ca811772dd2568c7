"""A server actor for tests that hands out scripted batches (malformed ones too) and records pushes."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from thespian.actors import ActorAddress

from flower_actors.actor_base import SafeActor
from flower_actors.link import PullTaskIns, PushTaskRes, TaskInsBatch, TaskResAck
from flower_actors.messages import TaskRes


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
        self.pulls = 0

    def receive_ScriptBatch(self, message: ScriptBatch, sender: ActorAddress) -> None:
        self.batches.append(message.items)
        self.send(sender, message)

    def receive_PullTaskIns(self, message: PullTaskIns, sender: ActorAddress) -> None:
        self.pulls += 1
        items = self.batches.popleft() if self.batches else ()
        self.send(sender, TaskInsBatch(message.request_id, items))

    def receive_PushTaskRes(self, message: PushTaskRes, sender: ActorAddress) -> None:
        self.pushed.extend(message.results)
        self.send(sender, TaskResAck(message.request_id, time.time()))

    def receive_GetPushed(self, message: GetPushed, sender: ActorAddress) -> None:
        self.send(sender, Pushed(tuple(self.pushed), self.pulls))
