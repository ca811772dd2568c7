"""Result spill: a file where a WorkloadClient keeps results that have not left its process yet.

Thespian transmits only between two handler calls and waits for each
message's acknowledgement before the next send on a connection, so a result
can still sit in a WorkloadClient's process when its next handler starts. If
that handler crashes the process, or hangs until the LeadClient kills it,
such a result would be lost. Before it starts a task, the WorkloadClient
therefore appends every result not yet acknowledged to its spill file (one
``write`` per task, kept by the kernel whatever happens to the process) and
empties the file once everything is acknowledged. When a WorkloadClient's
process ends, the LeadClient reads its file and sends on the results whose
delivery the Sender never reported; the Sender drops any second copy.

The files live in a directory of the node (``/dev/shm`` when it exists, so
they never touch a disk) that the LeadClient removes when it exits; one left
by a LeadClient that was killed is removed by the next one on the host.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import struct
import tempfile
from collections.abc import Sequence

from ..messages import TaskRes
from ..runtime.proc import pid_exists

__all__ = ["SpillWriter", "make_spill_dir", "read_spill", "remove_spill_dir"]

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("<I")


_PREFIX = "flower-actors-spill-"


def make_spill_dir() -> str | None:
    """A fresh private directory for this process's spill files, or ``None`` if none can be made.

    Directories left by LeadClients that were killed (their pid is in the
    name) are removed first.
    """
    for parent in ("/dev/shm", tempfile.gettempdir()):
        if not os.access(parent, os.W_OK):
            continue
        _remove_stale(parent)
        try:
            return tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=parent)
        except OSError:
            continue
    log.warning("no directory for result spill files: a result may die with a crashing process")
    return None


def _remove_stale(parent: str) -> None:
    try:
        names = [n for n in os.listdir(parent) if n.startswith(_PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(_PREFIX) :].partition("-")[0]
        if pid.isdigit() and not pid_exists(int(pid)):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def remove_spill_dir(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


class SpillWriter:
    """The WorkloadClient's side: append results, empty the file once they are delivered."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self.dirty = False

    def write(self, results: Sequence[TaskRes]) -> None:
        """Append ``results``; they survive this process (the kernel holds the data).

        Each is written as its fields (a dict): pickling the ``TaskRes`` itself called its ``__getstate__``
        and took four times as long, once per task.
        """
        if self.fd is None:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        data = pickle.dumps(tuple(_fields(result) for result in results), protocol=pickle.HIGHEST_PROTOCOL)
        os.write(self.fd, _LENGTH.pack(len(data)) + data)
        self.dirty = True

    def close(self) -> None:
        """Close the file (it stays where it is)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def clear(self) -> None:
        """Everything written was delivered: empty the file."""
        if self.dirty and self.fd is not None:
            os.ftruncate(self.fd, 0)
            self.dirty = False


def read_spill(path: str) -> list[TaskRes]:
    """The results in a spill file (a torn last record is skipped); the file is removed."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        os.unlink(path)
    except OSError:
        return []
    results: list[TaskRes] = []
    offset = 0
    while offset + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > len(data):
            break
        try:
            results.extend([TaskRes(**fields) for fields in pickle.loads(data[offset : offset + length])])
        except Exception:
            log.error("an unreadable record in spill file %s", path)
        offset += length
    return results


def _fields(result: TaskRes) -> dict[str, object]:
    state = result.__dict__
    return {k: v for k, v in state.items() if k != "_content"} if "_content" in state else state
