"""``PendingJournal``: the pulled messages still owing a reply, on disk, so a killed node can answer them.

The SuperLink marks a message delivered when it is pulled and never offers
it again; if the node dies before replying, the ServerApp waits for its own
timeout (or, if the node stays away, for Node Unavailable after two
heartbeat intervals). A node with its own key comes back under the same
node id, finds here what its previous life pulled and did not answer, and
answers each with a Node Unavailable error reply.

One small file per message (its content-less proto, a few hundred bytes),
written as soon as ``PullMessages`` returns the message (before its run,
FAB and objects are fetched: the SuperLink counts it delivered from then on)
and removed when its reply is stored:
the cost grows with the messages in flight, not with the run's length.
Written by rename, not synced: a real power loss may lose the last entries.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Leftover", "PendingJournal"]

log = logging.getLogger(__name__)

HEADER = struct.Struct("!Q")  # the run id


@dataclass(frozen=True)
class Leftover:
    """A message an earlier life of this node pulled and did not answer."""

    message_id: str
    run_id: int
    message: bytes


class PendingJournal:
    """Files ``FOLDER/MESSAGE_ID`` holding the run id and the message's content-less proto."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.broken = False

    def record(self, message_id: str, run_id: int, message: bytes) -> None:
        if self.broken:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            staged = self.folder / f".{message_id}.{os.getpid()}"
            staged.write_bytes(HEADER.pack(run_id) + message)
            staged.replace(self.folder / message_id)
        except OSError as exc:  # the journal is a safety net: never let it stop a message
            self.broken = True
            log.warning("cannot keep pending messages in %s (%s): a killed node cannot answer them", self.folder, exc)

    def forget(self, message_id: str) -> None:
        if self.broken:
            return
        try:
            (self.folder / message_id).unlink(missing_ok=True)
        except OSError:
            pass

    def leftovers(self) -> list[Leftover]:
        """What an earlier life left, oldest first; unreadable entries are dropped."""
        found: list[tuple[float, Leftover]] = []
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            return []
        for path in entries:
            if path.name.startswith("."):
                path.unlink(missing_ok=True)  # a write cut short
                continue
            try:
                data = path.read_bytes()
                (run_id,) = HEADER.unpack_from(data)
                found.append((path.stat().st_mtime, Leftover(path.name, run_id, data[HEADER.size :])))
            except (OSError, struct.error):
                path.unlink(missing_ok=True)
        return [leftover for _, leftover in sorted(found, key=lambda item: item[0])]
