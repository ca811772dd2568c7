"""``Sender``: pushes each ``TaskRes`` to the server as soon as it arrives.

Up to ``MAX_OUTSTANDING`` pushes are in flight at once; results that arrive
meanwhile wait and go together in the next push, so batches grow with load
and latency stays one hop when idle. Nothing is dropped before the server
acknowledged it, and it tells the LeadClient which results it took (the
LeadClient answers a task whose result never left a process that ended).
A push that fails (``LinkError``) or is not acknowledged
within ``request_timeout`` is sent again, in order, after an exponential
back-off with jitter. Results are deduplicated by the ``TaskIns`` id they
answer, so a task never gets two answers. The LeadClient hears how many
results wait (``SenderProgress``) and stops pulling above its
``max_unpushed``, which bounds what the Sender holds.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import OrderedDict, deque
from datetime import timedelta

from thespian.actors import ActorAddress, WakeupMessage

from ..link.protocol import LinkError, PushTaskRes, TaskResAck
from ..messages import TaskRes, take_batch
from ..runtime.actor_base import SafeActor
from ..runtime.recent_ids import RecentIds
from ..runtime.retry import Backoff
from .wire import FlushSender, ReportProgress, SenderFlushed, SenderProgress, StartSender, TaskResGroup

__all__ = ["Sender"]

log = logging.getLogger(__name__)

MAX_OUTSTANDING = 4
"""Pushes in flight at once."""
MAX_BATCH = 500
"""Results in one push."""
ANSWERED_WINDOW = 200_000
"""How many answered ``TaskIns`` ids are remembered to drop a second answer."""
BACKOFF_BASE = 0.1
"""First retry delay after a failed push; doubles per failure up to the node's ``retry_backoff_max``."""

REPORT_AFTER = 0.05
"""Longest a taken result or an acknowledged push goes unreported to the LeadClient. Reported on every
acknowledgement, a burst of 1,000 new workloads (a push each) cost the Sender and the LeadClient a message
per result; an acknowledgement is reported at once only while the LeadClient may be paused for room (the
last report said the Sender held ``max_unpushed`` results or more)."""


class _Timer(enum.Enum):
    """The Sender's timer payloads."""

    CHECK = "check"  # pushes not acknowledged in time fail
    REPORT = "report"  # tell the LeadClient which results were taken
    RETRY = "retry"  # push again after a back-off
    FLUSH = "flush"  # a flush's deadline


class Sender(SafeActor):
    """The node's single way to the server for results."""

    def __init__(self) -> None:
        super().__init__()
        self.start: StartSender | None = None
        self.buffer: deque[TaskRes] = deque()
        self.outstanding: OrderedDict[int, tuple[float, tuple[TaskRes, ...]]] = OrderedDict()
        self.answered = RecentIds(ANSWERED_WINDOW)
        self.next_request = 1
        self.pushed = 0
        self.errors = 0
        self.backoff = Backoff(BACKOFF_BASE)
        self.report_seq = 0  # of the last ReportProgress
        self.retry_at = 0.0
        self.check_pending = False
        self.unreported: list[str] = []  # ids taken since the last SenderProgress
        self.report_pending = False
        self.acked_unreported = False  # a push was acknowledged since the last SenderProgress
        self.reported_unpushed = 0  # as of the last SenderProgress
        self.flush_waiters: list[tuple[ActorAddress, float]] = []

    def receive_StartSender(self, message: StartSender, sender: ActorAddress) -> None:
        self.start = message
        self._pump()

    def receive_TaskRes(self, result: TaskRes, sender: ActorAddress) -> None:
        self._take(result)
        self._pump()

    def receive_TaskResGroup(self, group: TaskResGroup, sender: ActorAddress) -> None:
        for result in group.results:
            self._take(result)
        self._pump()

    def _take(self, result: TaskRes) -> None:
        if not self.answered.add(result.ins_id):
            log.info("dropped a second answer to task %s (%s)", result.ins_id, result.error or "ok")
            return
        self.buffer.append(result)
        self.unreported.append(result.ins_id)
        self._report_later()

    def _report_later(self) -> None:
        if not self.report_pending:
            self.report_pending = True
            self.wakeupAfter(timedelta(seconds=REPORT_AFTER), _Timer.REPORT)

    def _pump(self) -> None:
        start = self.start
        if start is None or time.monotonic() < self.retry_at:
            return
        now = time.time()
        while self.buffer and len(self.outstanding) < MAX_OUTSTANDING:
            batch = tuple(self._stamp(result, now) for result in take_batch(self.buffer, MAX_BATCH))
            request_id = self.next_request
            self.next_request += 1
            self.outstanding[request_id] = (time.monotonic(), batch)
            self.send(start.server, PushTaskRes(request_id, batch))
        if self.outstanding and not self.check_pending:
            self.check_pending = True
            self.wakeupAfter(timedelta(seconds=start.request_timeout), _Timer.CHECK)

    @staticmethod
    def _stamp(result: TaskRes, now: float) -> TaskRes:
        return result if result.pushed_at is not None else result.stamped(pushed_at=now)

    def receive_TaskResAck(self, ack: TaskResAck, sender: ActorAddress) -> None:
        entry = self.outstanding.pop(ack.request_id, None)
        if entry is None:
            return  # a late ack of a push that was already sent again (the server drops the repeat)
        batch = entry[1]
        self.backoff.reset()
        self.pushed += len(batch)
        self.errors += sum(1 for r in batch if r.error is not None)
        self._pump()
        if self.start is not None and self.reported_unpushed >= max(1, self.start.max_unpushed):
            self._progress()  # the LeadClient may be paused for room
        else:
            self.acked_unreported = True
            self._report_later()
        self._answer_flushes()

    def receive_LinkError(self, message: LinkError, sender: ActorAddress) -> None:
        if message.request_id in self.outstanding:
            self._failed(f"server error: {message.message}")

    def _failed(self, why: str) -> None:
        """Put every unacknowledged push back in front, oldest first, and retry after a back-off."""
        assert self.start is not None
        resend: list[TaskRes] = []
        for request_id in list(self.outstanding):
            resend.extend(self.outstanding.pop(request_id)[1])
        self.buffer.extendleft(reversed(resend))
        self.backoff.max_delay = self.start.retry_backoff_max
        delay = self.backoff.failed()
        self.retry_at = time.monotonic() + delay
        if self.backoff.worth_logging():
            log.warning("push failed (%s): %d result(s) kept, retrying in %.2f s", why, len(self.buffer), delay)
        self.wakeupAfter(timedelta(seconds=delay), _Timer.RETRY)
        self._progress()

    def _progress(self) -> None:
        if self.start is not None:
            received, self.unreported = tuple(self.unreported), []
            pushing = sum(len(batch) for _, batch in self.outstanding.values())
            self.reported_unpushed, self.acked_unreported = self._unpushed(), False
            self.send(
                self.start.lead,
                SenderProgress(self.pushed, self.errors, self.reported_unpushed, received, pushing, self.report_seq),
            )

    def receive_ReportProgress(self, message: ReportProgress, sender: ActorAddress) -> None:
        self.report_seq = message.seq
        self._progress()

    def receive_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        if message.payload == _Timer.REPORT:
            self.report_pending = False
            if self.unreported or self.acked_unreported:
                self._progress()
        elif message.payload == _Timer.FLUSH:
            self._answer_flushes()
        elif message.payload == _Timer.RETRY:
            self._pump()
        elif message.payload == _Timer.CHECK and self.start is not None:
            self.check_pending = False
            now = time.monotonic()
            if any(now - sent >= self.start.request_timeout for sent, _ in self.outstanding.values()):
                self._failed("no acknowledgement")
            self._pump()

    def receive_FlushSender(self, message: FlushSender, sender: ActorAddress) -> None:
        self.flush_waiters.append((sender, message.deadline))
        self._answer_flushes()
        if self.flush_waiters:
            self.wakeupAfter(timedelta(seconds=max(0.0, message.deadline - time.time())), _Timer.FLUSH)

    def _unpushed(self) -> int:
        return len(self.buffer) + sum(len(batch) for _, batch in self.outstanding.values())

    def _answer_flushes(self) -> None:
        unpushed = self._unpushed()
        now = time.time()
        waiting: list[tuple[ActorAddress, float]] = []
        for who, deadline in self.flush_waiters:
            if unpushed == 0 or now >= deadline:
                self.send(who, SenderFlushed(self.pushed, unpushed))
            else:
                waiting.append((who, deadline))
        self.flush_waiters = waiting
