"""flower_actors: the client side of federated learning as Thespian actors.

A ``LeadClient`` per node pulls ``TaskIns`` from a server, keeps one
``WorkloadClient`` process per workload and forwards each task at once; a
``Sender`` pushes every ``TaskRes`` back as soon as it exists.
"""

from . import _moved  # noqa: F401  - the module paths of before 0.2 keep working
from .apps import Client, WorkloadContext
from .config import AppSpec, NodeConfig, app_spec
from .control import (
    GetNodeStatus,
    LeadClientStarted,
    NodeStatus,
    NodeStopped,
    RegisterWorkload,
    StartLeadClient,
    StopNode,
    StopWorkload,
    WorkloadRegistered,
    WorkloadStopped,
)
from .driver import Driver
from .errors import (
    AppLoadError,
    BadContent,
    ConfigError,
    ErrorKind,
    FlowerActorsError,
    NodeTimeout,
    SystemStartError,
    TaskRejected,
    ThespianIncompatible,
    UnauthenticatedFrame,
    UnknownMessageType,
)
from .link import LinkError, SetServerFault
from .link.embedded import EmbeddedServer
from .local import LocalFederation, local_federation, run_node
from .messages import NodeId, Task, TaskError, TaskIns, TaskRes, WorkloadId
from .node.lead_client import LeadClient
from .node.workload_client import WorkloadClient
from .runtime.system import ActorSystemHandle, SystemConfig, free_port, kill_session, start_actor_system
from .runtime.transport_security import secure_thespian
from .timeline import write_timeline

__version__ = "0.1.0"

__all__ = [
    "ActorSystemHandle",
    "AppLoadError",
    "AppSpec",
    "BadContent",
    "Client",
    "ConfigError",
    "Driver",
    "EmbeddedServer",
    "ErrorKind",
    "FlowerActorsError",
    "GetNodeStatus",
    "LeadClient",
    "LeadClientStarted",
    "LinkError",
    "LocalFederation",
    "NodeConfig",
    "NodeId",
    "NodeStatus",
    "NodeStopped",
    "NodeTimeout",
    "RegisterWorkload",
    "SetServerFault",
    "StartLeadClient",
    "StopNode",
    "StopWorkload",
    "SystemConfig",
    "SystemStartError",
    "Task",
    "TaskError",
    "TaskIns",
    "TaskRejected",
    "TaskRes",
    "ThespianIncompatible",
    "UnauthenticatedFrame",
    "UnknownMessageType",
    "WorkloadClient",
    "WorkloadContext",
    "WorkloadId",
    "WorkloadRegistered",
    "WorkloadStopped",
    "app_spec",
    "free_port",
    "kill_session",
    "local_federation",
    "run_node",
    "secure_thespian",
    "start_actor_system",
    "write_timeline",
]
