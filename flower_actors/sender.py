"""``Sender``: pushes each ``TaskRes`` to the server as soon as it arrives.

Up to ``MAX_OUTSTANDING`` pushes are in flight at once; results that arrive
meanwhile wait and go together in the next push, so batches grow with load
and latency stays one hop when idle. A push not acknowledged within
``PUSH_TIMEOUT`` is sent again, in order; nothing is dropped until the
server acknowledged it. Results are deduplicated by the ``TaskIns`` id they
answer, so a task never gets two answers.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from datetime import timedelta
from typing import Deque, Dict, List, Optional, Tuple

from thespian.actors import ActorAddress, WakeupMessage

from .actor_base import SafeActor
from .control import FlushSender, SenderFlushed, SenderProgress, StartSender
from .link import PushTaskRes, TaskResAck
from .messages import TaskRes

__all__ = ["Sender"]

log = logging.getLogger(__name__)

MAX_OUTSTANDING = 4
"""Pushes in flight at once."""
MAX_BATCH = 500
"""Results in one push."""
PUSH_TIMEOUT = 5.0
"""Seconds to wait for the server's acknowledgement before pushing again."""
ANSWERED_WINDOW = 200_000
"""How many answered ``TaskIns`` ids are remembered to drop a second answer."""

_CHECK = "sender-check"
_FLUSH = "sender-flush"


class Sender(SafeActor):
    """The node's single way to the server for results."""

    def __init__(self) -> None:
        super().__init__()
        self.start: Optional[StartSender] = None
        self.buffer: Deque[TaskRes] = deque()
        self.outstanding: "OrderedDict[int, Tuple[float, Tuple[TaskRes, ...]]]" = OrderedDict()
        self.answered: "OrderedDict[str, None]" = OrderedDict()
        self.next_request = 1
        self.pushed = 0
        self.errors = 0
        self.duplicates = 0
        self.check_pending = False
        self.flush_waiters: List[Tuple[ActorAddress, float]] = []

    def receive_StartSender(self, message: StartSender, sender: ActorAddress) -> None:
        self.start = message

    def receive_TaskRes(self, result: TaskRes, sender: ActorAddress) -> None:
        if result.ins_id in self.answered:
            self.duplicates += 1
            log.info("dropped a second answer to task %s (%s)", result.ins_id, result.error or "ok")
            return
        self.answered[result.ins_id] = None
        if len(self.answered) > ANSWERED_WINDOW:
            self.answered.popitem(last=False)
        self.buffer.append(result)
        self._pump()

    def _pump(self) -> None:
        if self.start is None:
            return
        now = time.time()
        while self.buffer and len(self.outstanding) < MAX_OUTSTANDING:
            count = min(len(self.buffer), MAX_BATCH)
            batch = tuple(self._stamp(self.buffer.popleft(), now) for _ in range(count))
            request_id = self.next_request
            self.next_request += 1
            self.outstanding[request_id] = (time.monotonic(), batch)
            self.send(self.start.server, PushTaskRes(request_id, batch))
        if self.outstanding and not self.check_pending:
            self.check_pending = True
            self.wakeupAfter(timedelta(seconds=PUSH_TIMEOUT), _CHECK)

    @staticmethod
    def _stamp(result: TaskRes, now: float) -> TaskRes:
        return result if result.pushed_at is not None else result.stamped(pushed_at=now)

    def receive_TaskResAck(self, ack: TaskResAck, sender: ActorAddress) -> None:
        entry = self.outstanding.pop(ack.request_id, None)
        if entry is None:
            return  # a late ack of a push that was already sent again
        batch = entry[1]
        self.pushed += len(batch)
        self.errors += sum(1 for r in batch if r.error is not None)
        self._pump()
        if self.start is not None:
            self.send(self.start.lead, SenderProgress(self.pushed, self.errors, self._unpushed()))
        self._answer_flushes()

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        if message.payload == _FLUSH:
            self._answer_flushes()
            return
        if message.payload != _CHECK:
            return
        self.check_pending = False
        now = time.monotonic()
        expired = [rid for rid, (sent, _) in self.outstanding.items() if now - sent >= PUSH_TIMEOUT]
        if expired:
            log.warning("server did not acknowledge %d push(es); pushing again", len(expired))
            # Put every unacknowledged batch back in front, oldest first, to keep order.
            resend: List[TaskRes] = []
            for rid in list(self.outstanding):
                resend.extend(self.outstanding.pop(rid)[1])
            self.buffer.extendleft(reversed(resend))
        self._pump()

    def receive_FlushSender(self, message: FlushSender, sender: ActorAddress) -> None:
        self.flush_waiters.append((sender, message.deadline))
        self._answer_flushes()
        if self.flush_waiters:
            self.wakeupAfter(timedelta(seconds=max(0.0, message.deadline - time.time())), _FLUSH)

    def _unpushed(self) -> int:
        return len(self.buffer) + sum(len(batch) for _, batch in self.outstanding.values())

    def _answer_flushes(self) -> None:
        unpushed = self._unpushed()
        now = time.time()
        waiting: List[Tuple[ActorAddress, float]] = []
        for who, deadline in self.flush_waiters:
            if unpushed == 0 or now >= deadline:
                self.send(who, SenderFlushed(self.pushed, unpushed))
            else:
                waiting.append((who, deadline))
        self.flush_waiters = waiting

    def status(self) -> Dict[str, int]:
        """Counters, for logs and tests."""
        return {"pushed": self.pushed, "errors": self.errors, "unpushed": self._unpushed(), "duplicates": self.duplicates}
