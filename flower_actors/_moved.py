"""Module paths of flower_actors 0.1 that moved in 0.2, kept importable (``flower_actors.lead_client`` and the like).

Programs that name an actor by its path (``createActor("flower_actors.lead_client.LeadClient")``) or import
a helper from its old module go on working; new code uses the package's public names or the new paths.
"""

from __future__ import annotations

import importlib
import sys

MOVED = {
    "actor_base": "runtime.actor_base",
    "embedded_server": "link.embedded",
    "lead_client": "node.lead_client",
    "restarts": "runtime.retry",
    "sender": "node.sender",
    "spill": "node.spill",
    "system": "runtime.system",
    "task_board": "node.task_board",
    "transport_security": "runtime.transport_security",
    "workload_client": "node.workload_client",
}
"""Old module name -> its new path, both under ``flower_actors``."""

_package = sys.modules[__name__.rpartition(".")[0]]
for _old, _new in MOVED.items():
    _module = importlib.import_module(f"{_package.__name__}.{_new}")
    sys.modules[f"{_package.__name__}.{_old}"] = _module
    setattr(_package, _old, _module)
