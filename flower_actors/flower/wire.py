"""The plain forms of a Flower message that travel between actors (no flwr objects, only bytes and dicts).

A pulled message reaches its run's WorkloadClient as a ``FlowerIns`` (the
message's objects, as the SuperLink stores them, and what the run's
``Context`` is made of); the reply comes back as a ``FlowerReply`` (the
content-stripped message, its object tree and every object, of which the
SuperLink then asks for the ones it lacks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..messages import ShortRepr

__all__ = ["FlowerIns", "FlowerReply", "RunInfo"]


@dataclass(frozen=True)
class RunInfo:
    """What a run's WorkloadClient needs to load its ClientApp and build its ``Context``."""

    run_id: int
    node_id: int
    fab_id: str
    fab_version: str
    fab_hash: str
    run_config: Mapping[str, Any]
    """The FAB's config fused with the run's overrides (``get_fused_config_from_fab``)."""
    node_config: Mapping[str, Any]
    series_id: int
    flwr_home: str
    """Where the FAB is installed (``$FLWR_HOME``)."""


@dataclass(frozen=True, repr=False)
class FlowerIns(ShortRepr):
    """One pulled message for its run's WorkloadClient."""

    run: RunInfo
    message_id: str
    """The message's own object id (the deflated message omits it)."""
    objects: Mapping[str, bytes] = field(default_factory=dict)
    """Every object of the message's tree, by object id."""
    state: bytes | None = None
    """The run's ``context.state`` as its last reply left it (``codec.state_to_bytes``): a fresh
    WorkloadClient of the run starts from it; one that holds its ``Context`` ignores it."""

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.objects.values())


@dataclass(frozen=True, repr=False)
class FlowerReply(ShortRepr):
    """A reply ready for ``PushMessages``: what a WorkloadClient (or the link, for an error) built."""

    message: bytes
    """The reply as a content-stripped ``flwr.proto.message_pb2.Message``."""
    tree: bytes
    """Its ``ObjectTree``."""
    objects: Mapping[str, bytes]
    """Every object of the tree, by object id; the SuperLink asks only for those it lacks."""
    run_id: int
    runtime_s: float = 0.0
    """How long the ClientApp ran."""
    error_code: int | None = None
    """Set when the reply is an error reply (``flwr.common.constant.ErrorCode``)."""
    state: bytes | None = None
    """The run's ``context.state`` after this message, when it changed (the link keeps the latest)."""

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.objects.values())
