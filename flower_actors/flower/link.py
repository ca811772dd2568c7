"""``SuperLinkLink``: the server link (``NodeLink``) in front of a real Flower SuperLink.

The LeadClient pulls from it and its Sender pushes to it exactly as they do
with the embedded server; this actor turns that into Fleet API calls::

    PullTaskIns ─▶ PullMessages (one message per call; again at once while messages come)
                   first message of a run: GetRun, GetFab, install the FAB once per hash
                   PullObject for the message's tree, ConfirmMessageReceived
                ◀─ TaskInsBatch: TaskIns(workload_id=run_id, FlowerIns), StopWorkload(run) for ended runs
                   none there and wait_s > 0: the pull is held and retried (50 ms, doubling to 0.5 s)
    PushTaskRes ─▶ PushMessages + PushObject (only the objects asked for); a TaskError becomes an
                   error reply built from the pulled message ◀─ TaskResAck

Heartbeats run on their own thread (``heartbeat``). A 403 ends a run (its
WorkloadClient is stopped), a 401 makes the node join again, an
unreachable SuperLink answers ``LinkError`` so the node backs off and
retries (a finished reply stays with the Sender until it is stored).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key

from ..control import StopWorkload
from ..errors import (
    FabError,
    FleetError,
    NodeUnknown,
    RunEnded,
    SuperLinkRefused,
    SuperLinkTLSError,
    SuperLinkUnreachable,
)
from ..link.protocol import LinkError, PullTaskIns, PushTaskRes, TaskInsBatch, TaskResAck
from ..messages import TaskIns, TaskRes
from ..runtime.actor_base import SafeActor
from ..runtime.retry import Backoff
from .codec import exception_reason, tree_ids
from .control import (
    GetLinkStatus,
    GetServedResults,
    JoinSuperLink,
    LeaveSuperLink,
    LinkOptions,
    ServedResults,
    SuperLinkJoined,
    SuperLinkLeft,
)
from .fabs import FabStore
from .fleet import FleetSession, Pulled, SuperLinkAddress
from .heartbeat import Heartbeat
from .journal import PendingJournal
from .pushing import ReplyPusher
from .reception import fetch_run, link_status, task_for
from .runs import NODE_UNAVAILABLE, RunBook
from .wire import FlowerIns

__all__ = ["SuperLinkLink"]

log = logging.getLogger(__name__)

PULL_RETRY_MIN = 0.05
PULL_RETRY_MAX = 0.5
"""A held pull retries PullMessages after 50 ms, doubling to at most 0.5 s while none come."""
PULL_BURST_S = 0.25
"""Longest one pull request keeps pulling messages before it answers with what it has."""
TICK = "tick"
JOIN = "join"
RUN_CHECK_S = 3.0
"""How often a run with no message in flight is asked about (``GetRun``: a 403 means it ended)."""
NODE_ID = 0
"""The LeadClient's node id: the link serves exactly one LeadClient."""


class SuperLinkLink(SafeActor):
    """One Flower node's link to its SuperLink (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.options = LinkOptions()
        self.session: FleetSession | None = None
        self.heartbeat: Heartbeat | None = None
        self.book = RunBook()
        self.fabs: FabStore | None = None
        self.joiner: Any = None  # who asked JoinSuperLink, until answered
        self.join_started = 0.0
        self.join_attempts = 0
        self.join_backoff = Backoff(1.0, 30.0)
        self.joins = 0
        self.held: tuple[Any, PullTaskIns, float] | None = None  # (sender, pull, answer-empty-at monotonic)
        self.pull_retry = PULL_RETRY_MIN
        self.ticking = False
        self.pusher = ReplyPusher(self.book, lambda: self.session if self.online else None)
        self.served: collections.deque[TaskRes] = collections.deque(maxlen=0)  # for a timeline: keep_results

    # Joining and leaving.

    def receive_JoinSuperLink(self, message: JoinSuperLink, sender: Any) -> None:
        if self.session is not None and self.session.node_id is not None:
            self.send(sender, SuperLinkJoined(self.session.node_id))
            return
        self.options = message.options
        self.served = collections.deque(maxlen=max(0, message.options.keep_results))
        try:
            key = self._private_key(message.options.private_key_pem)
            where = SuperLinkAddress(
                message.options.superlink, message.options.insecure, message.options.root_certificates, key
            )
            self.fabs = FabStore(Path(message.options.flwr_home) if message.options.flwr_home else None)
            self.session = FleetSession(where, identity_folder=self.fabs.home)
            if self.session.identity is not None:
                self.book.journal = PendingJournal(self.session.identity.pending_folder)
        except Exception as exc:
            self.send(sender, SuperLinkJoined(None, f"cannot set up the connection: {exception_reason(exc)}"))
            return
        self.book.node_config = dict(message.options.node_config)
        self.joiner, self.join_started, self.join_attempts = sender, time.monotonic(), 0
        self._try_join()

    @staticmethod
    def _private_key(pem: bytes | None) -> ec.EllipticCurvePrivateKey | None:
        if pem is None:
            return None
        key = load_ssh_private_key(pem, None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the SuperNode private key must be an elliptic-curve (EC) key")
        return key

    def _try_join(self) -> None:
        assert self.session is not None
        self.join_attempts += 1
        try:
            node_id = self.session.join(self.options.heartbeat_interval)
        except SuperLinkTLSError as exc:
            self._joined(None, f"no TLS session with the SuperLink at {self.options.superlink}: {exc}")
            return
        except SuperLinkUnreachable as exc:
            if self._may_retry():
                delay = self.join_backoff.failed()
                log.warning(
                    "cannot reach the SuperLink at %s (%s); retrying in %.1f s", self.options.superlink, exc, delay
                )
                self.wakeupAfter(timedelta(seconds=delay), JOIN)
                return
            self._joined(
                None,
                f"cannot reach the SuperLink at {self.options.superlink} after {self.join_attempts} attempt(s): {exc}",
            )
            return
        except FleetError as exc:
            self._joined(None, f"the SuperLink at {self.options.superlink} refused this node: {exc}")
            return
        self.joins += 1
        self.book.rejoined(node_id)
        if self.heartbeat is None:
            self.heartbeat = Heartbeat(self.session.twin(), self.options.heartbeat_interval)
            self.heartbeat.start()
        else:
            self.heartbeat.rejoined(node_id)
        self._joined(node_id, None)
        if self.joins == 1:
            self._answer_leftovers()
        self._tick_soon(1.0)

    def _may_retry(self) -> bool:
        retries, wait = self.options.max_retries, self.options.max_wait_time
        if retries is not None and self.join_attempts > retries:
            return False
        return wait is None or time.monotonic() - self.join_started < wait

    def _joined(self, node_id: int | None, error: str | None) -> None:
        if error:
            log.error("%s", error)
        if self.joiner is not None:
            self.send(self.joiner, SuperLinkJoined(node_id, error, self.join_attempts))
            self.joiner = None

    def _rejoin(self, why: str) -> None:
        """The SuperLink forgot the node (401): join again at once; what was pulled before is lost."""
        assert self.session is not None
        log.warning("the SuperLink does not know this node any more (%s): joining again", why)
        self.session.node_id = None
        lost = self.book.rejoined(0)
        if lost:
            log.warning("%d message(s) pulled before cannot be answered under the new node id", len(lost))
        self.join_started, self.join_attempts = time.monotonic(), 0
        self.options = dataclasses.replace(self.options, max_retries=None, max_wait_time=None)  # never give up now
        self._try_join()

    def receive_LeaveSuperLink(self, message: LeaveSuperLink, sender: Any) -> None:
        self._answer_held(pull=False, force=True)
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None
        error = None
        if self.session is not None:
            try:
                self.session.leave()
            except FleetError as exc:
                error = str(exc)
            self.session.close()
        unanswered = len(self.book.pending)
        if unanswered:
            log.warning("left the SuperLink with %d message(s) unanswered", unanswered)
        self.send(sender, SuperLinkLeft(unanswered, error))

    # Pulling.

    @property
    def online(self) -> bool:
        return self.session is not None and self.session.node_id is not None

    def receive_PullTaskIns(self, message: PullTaskIns, sender: Any) -> None:
        if not self.online:
            self.send(sender, LinkError(message.request_id, "not joined to the SuperLink"))
            return
        if self.held is not None:  # a newer pull answers the older one
            held_sender, held, _ = self.held
            self.held = None
            self.send(held_sender, TaskInsBatch(held.request_id, ()))
        self.pull_retry = PULL_RETRY_MIN
        self.held = (sender, message, time.monotonic() + max(0.0, message.wait_s))
        self._answer_held(force=message.wait_s <= 0)

    def _answer_held(self, pull: bool = True, force: bool = False) -> None:
        """Pull for the held request (if ``pull``); answer it if anything came, if it is due, or if ``force``."""
        self._flush()
        if self.held is None:
            return
        sender, request, until = self.held
        items: list[Any] = [StopWorkload(run_id) for run_id in self.book.take_stops()]
        try:
            if pull and self.online:
                items.extend(self._pull_burst(request.max_tasks - len(items)))
        except SuperLinkUnreachable as exc:
            self.held = None
            self.send(sender, LinkError(request.request_id, str(exc)))
            return
        if items or force or time.monotonic() >= until:
            self.held = None
            self.send(sender, TaskInsBatch(request.request_id, tuple(items)))
            return
        self._tick_soon(self.pull_retry)
        self.pull_retry = min(self.pull_retry * 2, PULL_RETRY_MAX)

    def _pull_burst(self, room: int) -> list[TaskIns]:
        tasks: list[TaskIns] = []
        began = time.monotonic()
        while len(tasks) < room and time.monotonic() - began < PULL_BURST_S and self.online:
            assert self.session is not None
            try:
                pulled = self.session.pull()
            except NodeUnknown as exc:
                self._rejoin(str(exc))
                break
            if pulled is None:
                break
            task = self._receive(pulled)
            if task is not None:
                tasks.append(task)
        if tasks:
            self.pull_retry = PULL_RETRY_MIN
        return tasks

    def _receive(self, pulled: Pulled) -> TaskIns | None:
        """Everything a pulled message needs before its run's client can take it; ``None`` if it needs no reply."""
        assert self.session is not None and self.fabs is not None
        self.book.ended.discard(pulled.run_id)
        self.book.delivered(pulled.message_id, pulled.run_id, pulled.message)
        try:
            run = self.book.run(pulled.run_id) or fetch_run(self.session, self.fabs, self.book, pulled.run_id)
            objects = self.session.pull_objects(pulled.run_id, tree_ids(pulled.tree))
            self.session.confirm(pulled.run_id, pulled.message_id)
        except RunEnded:
            log.info("run %s is not running: message %s needs no reply", pulled.run_id, pulled.message_id[:12])
            self.book.not_owed(pulled.message_id)
            self.book.run_ended(pulled.run_id)
            return None
        except NodeUnknown:
            self.book.not_owed(pulled.message_id)
            raise
        except (FleetError, FabError) as exc:
            log.error("message %s of run %s could not be received: %s", pulled.message_id[:12], pulled.run_id, exc)
            self.book.received(pulled.message_id, pulled.run_id, pulled.message, 0)
            self._answer_error(pulled.message_id, f"the node could not receive the message: {exc}")
            return None
        log.debug("message %s of run %s received (%d objects)", pulled.message_id[:12], pulled.run_id, len(objects))
        ins = FlowerIns(run=run, message_id=pulled.message_id, objects=objects, state=self.book.states.get(run.run_id))
        self.book.received(pulled.message_id, pulled.run_id, pulled.message, ins.size)
        return task_for(pulled, ins, NODE_ID, self.options.task_deadline_s)

    # Pushing.

    def receive_PushTaskRes(self, message: PushTaskRes, sender: Any) -> None:
        if not self.online:
            self.send(sender, LinkError(message.request_id, "not joined to the SuperLink"))
            return
        for result in message.results:
            try:
                self.pusher.result(result)
                if self.options.keep_results:  # its timestamps, for a timeline; the payload may be a model
                    self.served.append(dataclasses.replace(result, payload=None, stored_at=time.time()))
            except SuperLinkUnreachable as exc:
                self.send(sender, LinkError(message.request_id, str(exc)))
                return
            except NodeUnknown as exc:
                self._rejoin(str(exc))
                break
        self.send(sender, TaskResAck(message.request_id, time.time()))
        self._answer_held()

    def _answer_error(self, message_id: str, reason: str) -> None:
        try:
            self.pusher.error(message_id, NODE_UNAVAILABLE, reason)
        except NodeUnknown as exc:
            self._rejoin(str(exc))

    def _flush(self) -> None:
        try:
            self.pusher.flush()
        except NodeUnknown as exc:
            self._rejoin(str(exc))

    def _answer_leftovers(self) -> None:
        """Answer what an earlier life of this node (same key, same node id) pulled and never answered."""
        if self.book.journal is None:
            return
        leftovers = self.book.journal.leftovers()
        if leftovers:
            log.warning("%d message(s) pulled before this node restarted get a Node Unavailable reply", len(leftovers))
        for leftover in leftovers:
            self.book.received(leftover.message_id, leftover.run_id, leftover.message, 0)
            self._answer_error(leftover.message_id, "the node restarted before it answered this message")

    # Timers and status.

    def _tick_soon(self, seconds: float) -> None:
        if not self.ticking:
            self.ticking = True
            self.wakeupAfter(timedelta(seconds=seconds), TICK)

    def receive_WakeupMessage(self, message: Any, sender: Any) -> None:
        if message.payload == JOIN:
            self._try_join()
            return
        self.ticking = False
        if self.heartbeat is not None and self.heartbeat.needs_rejoin.is_set() and self.online:
            self._rejoin("a heartbeat was refused")
        self._check_runs()
        self._answer_held()
        if self.online:
            self._tick_soon(1.0 if self.held is None else self.pull_retry)

    def _check_runs(self) -> None:
        """Stop the clients of runs that ended between messages (see ``RunBook.runs_to_check``)."""
        if not self.online:
            return
        assert self.session is not None
        for run_id in self.book.runs_to_check(time.monotonic(), RUN_CHECK_S):
            try:
                self.session.get_run(run_id)
            except (RunEnded, SuperLinkRefused) as exc:  # refused: the SuperLink does not know the run (restarted)
                log.info("run %s is over (%s): its WorkloadClient is stopped", run_id, exc)
                self.book.run_ended(run_id)
            except FleetError:
                return  # unreachable, or the node is unknown: the next tick tries again

    def receive_GetServedResults(self, message: GetServedResults, sender: Any) -> None:
        self.send(sender, ServedResults(tuple(self.served)))

    def receive_GetLinkStatus(self, message: GetLinkStatus, sender: Any) -> None:
        node_id = self.session.node_id if self.session else None
        installs = self.fabs.installs if self.fabs else 0
        beats = self.heartbeat.sent if self.heartbeat else 0
        self.send(sender, link_status(self.book, node_id, self.joins, installs, beats))

    def receive_ActorExitRequest(self, message: Any, sender: Any) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.session is not None:
            self.session.close()
