"""``NodeIdentity``: the node id a SuperLink gave a node's key, kept on disk across the node's restarts."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

__all__ = ["NodeIdentity"]

log = logging.getLogger(__name__)


class NodeIdentity:
    """The node id a SuperLink gave one key, kept in a file so a restarted node can end its stale session."""

    def __init__(self, folder: Path, superlink: str, public_key: bytes) -> None:
        digest = hashlib.sha256(superlink.encode() + b"\0" + public_key).hexdigest()[:24]
        self.path = folder / "flower-actors" / "nodes" / f"{digest}.json"
        self.superlink = superlink

    @property
    def pending_folder(self) -> Path:
        """Where this node's ``PendingJournal`` lives (beside its id, per SuperLink and key)."""
        return self.path.with_suffix(".pending")

    def load(self) -> int | None:
        try:
            return int(json.loads(self.path.read_text())["node_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, node_id: int) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            staged = self.path.with_suffix(f".{os.getpid()}.tmp")
            staged.write_text(json.dumps({"node_id": node_id, "superlink": self.superlink}))
            staged.replace(self.path)
        except OSError as exc:  # only the stale-session shortcut is lost
            log.warning("cannot keep the node id in %s: %s", self.path, exc)
