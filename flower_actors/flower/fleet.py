"""``FleetSession``: the Fleet API calls of one node over flwr's ``FleetHttpClient``, errors classified.

No retries and no threads here: the caller decides (the link answers a
failed call with ``LinkError`` and the node backs off; ``connect`` retries
within ``--max-retries``/``--max-wait-time``). flwr's own connection helper
is not used: inside an actor it swallows errors, hard-exits on a failed
connect and signals its own process on a 401 (``flower-1.42-notes.md``).

Errors, as the callers need them:

- ``RunEnded``: HTTP 403 (code 2007): the run is not RUNNING any more.
- ``NodeUnknown``: HTTP 401: the SuperLink does not know this node (it restarted): register again.
- ``SuperLinkUnreachable``: no connection, a timeout, or 502/503/504: try again later.
- ``SuperLinkRefused``: any other HTTP error: the request itself was refused.
- ``SuperLinkTLSError`` (a kind of unreachable): no TLS session: an untrusted
  certificate, TLS against a plain-HTTP SuperLink, or ``--insecure`` against a
  TLS one (found by trying a handshake when plain HTTP is cut off).

A node with its own key (``--auth-supernode-private-key``) remembers the
node id the SuperLink gave it (``NodeIdentity``). If the SuperLink refuses to
activate it because that id still counts as online (the node's host lost
power, and its last heartbeat has not expired yet), the node ends its own
stale session (``DeactivateNode``, signed with the same key) and activates
again: Flower's own node is refused until the old session expires.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec
from flwr.common.serde import fab_from_proto, run_from_proto
from flwr.proto.fab_pb2 import GetFabRequest  # pylint: disable=E0611
from flwr.proto.fleet_pb2 import (  # pylint: disable=E0611
    ActivateNodeRequest,
    DeactivateNodeRequest,
    PullMessagesRequest,
    PushMessagesRequest,
    RegisterNodeFleetRequest,
    UnregisterNodeFleetRequest,
)
from flwr.proto.heartbeat_pb2 import SendNodeHeartbeatRequest  # pylint: disable=E0611
from flwr.proto.message_pb2 import (  # pylint: disable=E0611
    ConfirmMessageReceivedRequest,
    ObjectTree,
    PullObjectRequest,
    PushObjectRequest,
)
from flwr.proto.message_pb2 import Message as ProtoMessage  # pylint: disable=E0611
from flwr.proto.node_pb2 import Node  # pylint: disable=E0611
from flwr.proto.run_pb2 import GetRunRequest  # pylint: disable=E0611
from flwr.supercore.fab import Fab
from flwr.supercore.interceptors.http.runtime_version import RuntimeVersionHttpInterceptor
from flwr.supercore.primitives.asymmetric import generate_key_pairs, public_key_to_bytes
from flwr.supercore.run import Run
from flwr.supernode.fleet_http_client import FleetHttpClient
from flwr.supernode.node_auth_http_interceptor import NodeAuthHttpInterceptor

from ..errors import FleetError, NodeUnknown, SuperLinkRefused, SuperLinkTLSError, SuperLinkUnreachable
from .fleet_errors import classify, cut_off, speaks_tls
from .identity import NodeIdentity
from .wire import FlowerReply

__all__ = ["FleetSession", "Pulled", "SuperLinkAddress"]

log = logging.getLogger(__name__)

OBJECT_POLL = 0.05
"""First wait for an object the SuperLink has not stored yet (flwr's 1 s default costs a second)."""
OBJECT_PULL_LIMIT = 60.0
"""Longest time to wait for a message's objects."""

REGISTRATION_DISABLED = 2001
"""flwr's ``FLEET_SUPERNODE_REGISTRATION_DISABLED``: the SuperLink runs with ``--enable-supernode-auth``."""
ACTIVATION_FAILED = 2004
"""flwr's ``ApiErrorCode.FLEET_NODE_ACTIVATION_FAILED``: the key is not registered, or its node is still online."""

T = TypeVar("T")


@dataclass(frozen=True)
class SuperLinkAddress:
    """Where and how to reach the Fleet API (the meaning of flower-supernode's flags)."""

    address: str = "127.0.0.1:8000"
    insecure: bool = False
    root_certificates: bytes | None = None
    """PEM bytes; with ``insecure=False`` and none, the system's certificates."""
    private_key: ec.EllipticCurvePrivateKey | None = None
    """The node's key (``--auth-supernode-private-key``); ``None``: a fresh key, and the node registers itself."""


@dataclass(frozen=True)
class Pulled:
    """A message ``PullMessages`` gave: its content-less proto (serialised) and its object tree."""

    run_id: int
    message_id: str
    message: bytes
    tree: ObjectTree
    ttl: float
    created_at: float
    """Unix time the message was created."""


class FleetSession:
    """One node's connection to the Fleet API: its key, its node id, one HTTP client."""

    def __init__(
        self, where: SuperLinkAddress, keys: tuple[Any, Any] | None = None, identity_folder: Path | None = None
    ) -> None:
        self.where = where
        if keys is None:
            keys = (where.private_key, where.private_key.public_key()) if where.private_key else generate_key_pairs()
        self.keys = keys
        self.self_registered = where.private_key is None
        self.public_key = public_key_to_bytes(keys[1])
        self.node_id: int | None = None
        self.identity = (
            NodeIdentity(identity_folder, where.address, self.public_key)
            if identity_folder is not None and not self.self_registered
            else None
        )
        roots = where.root_certificates if not where.insecure else None
        self.client = FleetHttpClient.from_server_address(
            where.address,
            where.insecure,
            roots,
            interceptors=[
                RuntimeVersionHttpInterceptor(component_name="SuperNode"),
                NodeAuthHttpInterceptor(keys[0], keys[1]),
            ],
        )

    def twin(self) -> FleetSession:
        """Another session with the same key and node id, on its own HTTP client (for another thread)."""
        other = FleetSession(self.where, self.keys)
        other.self_registered = self.self_registered
        other.node_id = self.node_id
        return other

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except FleetError:
            raise
        except Exception as exc:
            raise classify(exc, what) from None

    @property
    def node(self) -> Node:
        if self.node_id is None:
            raise NodeUnknown("the node is not activated")
        return Node(node_id=self.node_id)

    def join(self, heartbeat_interval: float) -> int:
        """Register (unless an operator registered the key) and activate; the node id."""
        try:
            node_id = self._join(heartbeat_interval)
        except SuperLinkUnreachable as exc:
            if self.where.insecure and cut_off(exc) and speaks_tls(self.where.address):
                raise SuperLinkTLSError(
                    f"{exc}: the SuperLink speaks TLS; drop --insecure and pass --root-certificates"
                ) from exc
            raise
        self.node_id = node_id
        if self.identity is not None:
            self.identity.save(node_id)
        return node_id

    def _join(self, heartbeat_interval: float) -> int:
        if self.self_registered:
            try:
                self._call(
                    "RegisterNode", self.client.RegisterNode, RegisterNodeFleetRequest(public_key=self.public_key)
                )
            except SuperLinkRefused as exc:
                if exc.code == REGISTRATION_DISABLED:
                    raise SuperLinkRefused(
                        f"{exc}: pass --auth-supernode-private-key with a key the operator registered"
                    ) from exc
                if "already" not in str(exc).lower():  # re-joining with the same key after a 401
                    raise
        try:
            return self._activate(heartbeat_interval)
        except SuperLinkRefused as exc:
            if exc.code != ACTIVATION_FAILED or self.self_registered:
                raise
            return self._end_stale_session(heartbeat_interval, exc)

    def _activate(self, heartbeat_interval: float) -> int:
        response = self._call(
            "ActivateNode",
            self.client.ActivateNode,
            ActivateNodeRequest(public_key=self.public_key, heartbeat_interval=heartbeat_interval),
        )
        return int(response.node_id)

    def _end_stale_session(self, heartbeat_interval: float, refusal: SuperLinkRefused) -> int:
        """Activation refused: end the session this key's node id still has, then activate again."""
        known = self.identity.load() if self.identity is not None else None
        hint = (
            f"{refusal}: is this node's public key registered (flwr supernode register KEY.pub)? "
            "Or a node with this key is still online"
        )
        if known is None:
            raise SuperLinkRefused(hint) from refusal
        log.warning(
            "node %s still counts as online (a previous run of this node that did not stop, "
            "or another node using this key): ending that session and activating again",
            known,
        )
        try:
            self._call("DeactivateNode", self.client.DeactivateNode, DeactivateNodeRequest(node_id=known))
        except (NodeUnknown, SuperLinkRefused) as exc:
            raise SuperLinkRefused(f"{hint} (ending the session of node {known} failed: {exc})") from refusal
        return self._activate(heartbeat_interval)

    def heartbeat(self, interval: float) -> bool:
        """Send one heartbeat; whether the SuperLink accepted it."""
        response = self._call(
            "SendNodeHeartbeat",
            self.client.SendNodeHeartbeat,
            SendNodeHeartbeatRequest(node=self.node, heartbeat_interval=interval),
        )
        return bool(response.success)

    def pull(self) -> Pulled | None:
        """At most one message (of any run), or ``None``."""
        response = self._call("PullMessages", self.client.PullMessages, PullMessagesRequest(node=self.node))
        if not response.messages_list:
            return None
        proto = response.messages_list[0]
        tree = response.message_object_trees[0]
        return Pulled(
            run_id=int(proto.metadata.run_id),
            message_id=tree.object_id,
            message=proto.SerializeToString(),
            tree=tree,
            ttl=float(proto.metadata.ttl),
            created_at=float(proto.metadata.created_at),
        )

    def get_run(self, run_id: int) -> Run:
        response = self._call("GetRun", self.client.GetRun, GetRunRequest(node=self.node, run_id=run_id))
        return run_from_proto(response.run)

    def get_fab(self, fab_hash: str, run_id: int) -> Fab:
        response = self._call(
            "GetFab", self.client.GetFab, GetFabRequest(node=self.node, hash_str=fab_hash, run_id=run_id)
        )
        return fab_from_proto(response.fab)

    def pull_objects(self, run_id: int, object_ids: list[str]) -> dict[str, bytes]:
        """Every object of ``object_ids``, waiting (from ``OBJECT_POLL`` s, doubling) for those not stored yet.

        The message is already marked delivered: a call the network cuts off
        is tried again within ``OBJECT_PULL_LIMIT`` rather than giving it up.
        """
        objects: dict[str, bytes] = {}
        started = time.monotonic()
        for object_id in object_ids:
            delay = OBJECT_POLL
            while True:
                response = self._patient(
                    started,
                    "PullObject",
                    self.client.PullObject,
                    PullObjectRequest(node=self.node, run_id=run_id, object_id=object_id),
                )
                if not response.object_found:
                    raise SuperLinkRefused(f"PullObject: object {object_id} of run {run_id} does not exist")
                if response.object_available:
                    objects[object_id] = response.object_content
                    break
                if time.monotonic() - started > OBJECT_PULL_LIMIT:
                    raise SuperLinkUnreachable(f"PullObject: object {object_id} not available in {OBJECT_PULL_LIMIT} s")
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        return objects

    def confirm(self, run_id: int, message_id: str) -> None:
        self._patient(
            time.monotonic(),
            "ConfirmMessageReceived",
            self.client.ConfirmMessageReceived,
            ConfirmMessageReceivedRequest(node=self.node, run_id=run_id, message_object_id=message_id),
        )

    def _patient(self, started: float, what: str, fn: Callable[..., T], *args: Any) -> T:
        """``_call``, tried again (from ``OBJECT_POLL`` s, doubling to 1 s) while the SuperLink is
        unreachable, until ``OBJECT_PULL_LIMIT`` s after ``started``."""
        delay = OBJECT_POLL
        while True:
            try:
                return self._call(what, fn, *args)
            except SuperLinkTLSError:
                raise
            except SuperLinkUnreachable as exc:
                if time.monotonic() - started > OBJECT_PULL_LIMIT:
                    raise
                log.warning("%s; trying again in %.2f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def push(self, reply: FlowerReply) -> int:
        """``PushMessages`` then ``PushObject`` for only the objects the SuperLink asks for; how many it asked.

        A refused reply (a duplicate, an expired TTL) is refused silently by
        the SuperLink: it then asks for no object.
        """
        message = ProtoMessage()
        message.ParseFromString(reply.message)
        tree = ObjectTree()
        tree.ParseFromString(reply.tree)
        response = self._call(
            "PushMessages",
            self.client.PushMessages,
            PushMessagesRequest(
                node=self.node,
                messages_list=[message],
                message_object_trees=[tree],
                clientapp_runtime_list=[reply.runtime_s],
            ),
        )
        wanted = list(response.objects_to_push)
        for object_id in wanted:
            content = reply.objects.get(object_id)
            if content is None:
                raise SuperLinkRefused(f"PushObject: the SuperLink asked for object {object_id}, not in the reply")
            stored = self._call(
                "PushObject",
                self.client.PushObject,
                PushObjectRequest(
                    node=self.node,
                    run_id=reply.run_id,
                    object_id=object_id,
                    object_content=content,
                    session_id=response.session_id,
                ),
            )
            if not stored.stored:
                raise SuperLinkRefused(f"PushObject: object {object_id} of run {reply.run_id} was not stored")
        return len(wanted)

    def leave(self) -> None:
        """Deactivate (in-flight messages become "Node Unavailable" at once), and unregister if self-registered."""
        if self.node_id is None:
            return
        node_id, self.node_id = self.node_id, None
        self._call("DeactivateNode", self.client.DeactivateNode, DeactivateNodeRequest(node_id=node_id))
        if self.self_registered:
            self._call("UnregisterNode", self.client.UnregisterNode, UnregisterNodeFleetRequest(node_id=node_id))

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing a broken connection must not hide the error that broke it
            pass
