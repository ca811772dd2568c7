"""flower_actors: the client side of federated learning as Thespian actors.

A ``LeadClient`` per node pulls ``TaskIns`` from a server, keeps one
``WorkloadClient`` process per workload and forwards each task at once; a
``Sender`` pushes every ``TaskRes`` back as soon as it exists.
"""

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
from .embedded_server import EmbeddedServer
from .errors import (
    AppLoadError,
    ConfigError,
    ErrorKind,
    FlowerActorsError,
    NodeTimeout,
    SystemStartError,
    TaskRejected,
)
from .lead_client import LeadClient
from .link import LinkError, SetServerFault
from .local import LocalFederation, local_federation, run_node
from .messages import BadContent, NodeId, Task, TaskError, TaskIns, TaskRes, WorkloadId
from .system import ActorSystemHandle, SystemConfig, free_port, kill_session, start_actor_system
from .transport_security import secure_thespian
from .workload_client import WorkloadClient

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
    "StartLeadClient",
    "SetServerFault",
    "StopNode",
    "StopWorkload",
    "SystemConfig",
    "SystemStartError",
    "Task",
    "TaskError",
    "TaskIns",
    "TaskRejected",
    "TaskRes",
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
]
