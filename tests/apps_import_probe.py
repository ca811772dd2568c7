"""An app that tells whether its module was imported in the process that runs it (``share_imports``)."""

from __future__ import annotations

import os
from typing import Any

from flower_actors import Client, TaskIns

IMPORTED_IN = os.getpid()


class ImportedWhere(Client):
    def handle_default(self, task: TaskIns) -> dict[str, Any]:
        pid = os.getpid()
        return {"imported_here": pid == IMPORTED_IN, "pid": pid, "fds": len(os.listdir("/proc/self/fd"))}
