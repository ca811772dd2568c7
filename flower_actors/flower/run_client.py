"""``FlowerRunClient``: one per run, in that run's WorkloadClient; the run's ClientApp stays loaded.

The first message of a run loads its ClientApp (from the FAB the link
installed) and builds its ``Context`` (fused run config, node config,
``series_id``); both stay for every later message of the run, so the app
imports once and ``context.state`` carries over, as in Flower's own node.
One process per run is what makes this correct: flwr's ``load_app`` puts
the app's folder on ``sys.path`` and reuses ``sys.modules`` by name, and
``TaskIdentity`` is process-global.

A ClientApp that raises gets an error reply (``CLIENT_APP_RAISED_EXCEPTION``,
or ``LOAD_CLIENT_APP_EXCEPTION`` when it cannot be loaded), and the
``Context`` is kept, mutations and all, as Flower's node keeps it.

After every message the state travels out with the reply (only when it
changed) and the link keeps the latest; a WorkloadClient that starts for a
run whose earlier process died (or was stopped idle) builds its ``Context``
from it, so ``context.state`` survives the process, as in Flower's node.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from typing import Any

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp.client_app import ClientApp, LoadClientAppError
from flwr.clientapp.utils import get_load_client_app_fn
from flwr.common.constant import ErrorCode
from flwr.supercore.task_identity import TaskIdentity

from ..apps import Client, WorkloadContext
from ..messages import TaskIns
from .codec import deflate, exception_reason, inflate, state_from_bytes, state_to_bytes
from .wire import FlowerIns, FlowerReply, RunInfo

__all__ = ["FLOWER_MESSAGE_TYPE", "FlowerRunClient"]

log = logging.getLogger(__name__)

FLOWER_MESSAGE_TYPE = "flower"
"""The ``message_type`` of the tasks that carry Flower messages."""


class FlowerRunClient(Client):
    """The client of one Flower run: its loaded ClientApp and its ``Context``."""

    def __init__(self, context: WorkloadContext) -> None:
        super().__init__(context)
        self.app: ClientApp | None = None
        self.load_error: str | None = None
        self.run: RunInfo | None = None
        self.flower_context: Context | None = None
        self.messages = 0
        self.state_sent: bytes | None = None
        """``context.state`` as the link last got it."""

    def handle_flower(self, task: TaskIns) -> FlowerReply:
        """Run the ClientApp on the message ``task`` carries; the reply (an error reply if it raised)."""
        ins = task.content
        if not isinstance(ins, FlowerIns):
            raise TypeError(f"a {FLOWER_MESSAGE_TYPE!r} task carries a FlowerIns, got {type(ins).__name__}")
        message = inflate(ins)
        context = self._context(ins.run, ins.state)
        TaskIdentity.run_id = ins.run.run_id
        TaskIdentity.node_id = ins.run.node_id
        TaskIdentity.task_id = random.getrandbits(63)
        started = time.monotonic()
        reply = self._call(message, context)
        self.messages += 1
        runtime_s = time.monotonic() - started
        return dataclasses.replace(deflate(reply, runtime_s=runtime_s), state=self._state_changed(context))

    def _state_changed(self, context: Context) -> bytes | None:
        try:
            state = state_to_bytes(context.state)
        except Exception as exc:  # a state Flower cannot serialise stays in this process only
            log.warning("run %s: context.state cannot be kept outside the process: %s", context.run_id, exc)
            return None
        if state == self.state_sent:
            return None
        self.state_sent = state
        return state

    def _context(self, run: RunInfo, kept: bytes | None) -> Context:
        if self.flower_context is None:
            self.run = run
            state = RecordDict()
            if kept:
                state = state_from_bytes(kept)
                self.state_sent = kept
                log.info("run %s: Context state restored (%d bytes) in a fresh process", run.run_id, len(kept))
            self.flower_context = Context(
                run_id=run.run_id,
                node_id=run.node_id,
                node_config=dict(run.node_config),
                state=state,
                run_config=dict(run.run_config),
                series_id=run.series_id,
            )
        elif self.flower_context.node_id != run.node_id:  # the node joined again under a new id
            self.flower_context.node_id = run.node_id
        return self.flower_context

    def _load(self, run: RunInfo) -> ClientApp:
        if self.app is None:
            os.environ["FLWR_HOME"] = run.flwr_home
            loader = get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)
            self.app = loader(run.fab_id, run.fab_version, run.fab_hash)
        return self.app

    def _call(self, message: Message, context: Context) -> Message:
        assert self.run is not None
        try:
            app = self._load(self.run)
        except Exception as exc:  # LoadClientAppError, or anything the app's import raised
            log.error("run %s: cannot load its ClientApp: %s", self.run.run_id, exception_reason(exc))
            reason = "An exception was raised when attempting to load `ClientApp`: " + exception_reason(exc)
            return Message(Error(code=ErrorCode.LOAD_CLIENT_APP_EXCEPTION, reason=reason), reply_to=message)
        try:
            reply = app(message=message, context=context)
        except Exception as exc:
            code = (
                ErrorCode.LOAD_CLIENT_APP_EXCEPTION
                if isinstance(exc, LoadClientAppError)
                else ErrorCode.CLIENT_APP_RAISED_EXCEPTION
            )
            log.warning("run %s: the ClientApp raised %s", self.run.run_id, exception_reason(exc))
            return Message(Error(code=code, reason=exception_reason(exc)), reply_to=message)
        if not isinstance(reply, Message):
            reason = f"the ClientApp returned a {type(reply).__name__}, not a Message"
            return Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=message)
        return reply

    def status(self) -> dict[str, Any]:
        """What this run's client holds (for logs and tests)."""
        return {
            "run_id": self.run.run_id if self.run else None,
            "loaded": self.app is not None,
            "messages": self.messages,
        }
