"""The server link: the messages and contracts between nodes, drivers and a server, and its implementations.

``protocol`` holds the messages and the ``NodeLink``/``DriverLink``
protocols; ``embedded`` the ``EmbeddedServer`` (with its fault-injection
messages). Names are re-exported here: ``from flower_actors.link import PullTaskIns``.
"""

from .embedded import EmbeddedServer, GetServerStatus, ServerStatus, SetServerFault
from .protocol import (
    CollectTaskRes,
    DriverLink,
    LinkError,
    NodeLink,
    PullTaskIns,
    PushTaskRes,
    SubmitTaskIns,
    TaskInsAccepted,
    TaskInsBatch,
    TaskResAck,
    TaskResBatch,
)

__all__ = [
    "CollectTaskRes",
    "DriverLink",
    "EmbeddedServer",
    "GetServerStatus",
    "LinkError",
    "NodeLink",
    "PullTaskIns",
    "PushTaskRes",
    "ServerStatus",
    "SetServerFault",
    "SubmitTaskIns",
    "TaskInsAccepted",
    "TaskInsBatch",
    "TaskResAck",
    "TaskResBatch",
]
