"""``ReplyPusher``: every reply the link owes goes out here, once (the link's push side, no actor code).

A ``TaskRes`` from a run's WorkloadClient becomes the ClientApp's reply, or
an error reply built from the pulled message when the task produced none.
Error replies the link makes itself (a message it could not receive, one a
killed earlier life of the node left unanswered) wait in an outbox while
the SuperLink is unreachable. A ``TaskRes`` push that finds the SuperLink
unreachable raises ``SuperLinkUnreachable``: the Sender keeps the result
and pushes again. ``NodeUnknown`` (401) is the caller's to handle (join
again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import FleetError, NodeUnknown, RunEnded, SuperLinkUnreachable
from ..messages import TaskRes, load_content
from .codec import error_reply
from .fleet import FleetSession
from .runs import CLIENT_APP_RAISED_EXCEPTION, RunBook, error_code_for
from .wire import FlowerReply

__all__ = ["ReplyPusher"]

log = logging.getLogger(__name__)


class ReplyPusher:
    """Pushes the replies ``book`` says are owed, over the session ``session()`` gives."""

    def __init__(self, book: RunBook, session: Callable[[], FleetSession | None]) -> None:
        self.book = book
        self.session = session
        self.outbox: list[tuple[str, FlowerReply]] = []

    def result(self, result: TaskRes) -> None:
        """Push the reply ``result`` carries (or the error reply it stands for), if still owed."""
        pending = self.book.owes(result.ins_id)
        if pending is None:
            return  # answered already (a push retried), or its run ended
        reply: object = None
        if result.error is None:
            try:
                reply = load_content(result.payload)
            except Exception as exc:
                reply = exc
        if isinstance(reply, FlowerReply) and reply.state is not None:
            self.book.states[pending.run_id] = reply.state
        if not isinstance(reply, FlowerReply):
            error = result.error
            if error is not None:
                code, reason = error_code_for(error), f"{error.kind}: {error.message}"
            else:
                code, reason = (
                    CLIENT_APP_RAISED_EXCEPTION,
                    f"the run's client returned no Flower reply ({reply!r:.200})",
                )
            reply = error_reply(pending.message, code, reason)
        self.push(result.ins_id, reply)

    def error(self, message_id: str, code: int, reason: str) -> None:
        """Answer ``message_id`` with an error reply now, or as soon as the SuperLink answers again."""
        pending = self.book.owes(message_id)
        if pending is None:
            return
        reply = error_reply(pending.message, code, reason)
        try:
            self.push(message_id, reply)
        except SuperLinkUnreachable:
            log.warning("the error reply to message %s waits: the SuperLink is unreachable", message_id[:12])
            self.outbox.append((message_id, reply))

    def flush(self) -> None:
        """Push what waits in the outbox, in order, until the SuperLink stops answering."""
        while self.outbox and self.session() is not None:
            message_id, reply = self.outbox[0]
            try:
                self.push(message_id, reply)
            except SuperLinkUnreachable:
                return
            self.outbox.pop(0)

    def push(self, message_id: str, reply: FlowerReply) -> None:
        """Push one reply; afterwards it is answered (stored, refused, or its run is over)."""
        session = self.session()
        if session is None:
            raise SuperLinkUnreachable("not joined to the SuperLink")
        try:
            asked = session.push(reply)
            log.debug(
                "reply to message %s of run %s stored (%d of %d objects asked)",
                message_id[:12],
                reply.run_id,
                asked,
                len(reply.objects),
            )
        except RunEnded as exc:
            dropped = self.book.run_ended(reply.run_id)
            log.info(
                "run %s ended: its reply to message %s was not stored (%s); %d dropped",
                reply.run_id,
                message_id[:12],
                exc,
                dropped,
            )
            return
        except (NodeUnknown, SuperLinkUnreachable):
            raise
        except FleetError as exc:
            self.book.refused += 1
            log.error("the SuperLink refused the reply to message %s of run %s: %s", message_id[:12], reply.run_id, exc)
        self.book.answered(message_id, reply.runtime_s, reply.error_code is not None)
