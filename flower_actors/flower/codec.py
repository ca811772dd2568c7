"""Flower ``Message`` <-> the wire forms of ``wire`` (imports flwr).

``inflate`` rebuilds a pulled message in its run's WorkloadClient;
``deflate`` turns a reply into what ``PushMessages`` needs; ``error_reply``
builds an error reply from the pulled message's metadata alone (the link
does that for a message whose process died or passed its deadline);
``state_to_bytes``/``state_from_bytes`` carry a run's ``context.state`` out of
its process and into a fresh one.
"""

from __future__ import annotations

from flwr.app import Error, Message, RecordDict
from flwr.app.message import remove_content_from_message
from flwr.common.serde import message_from_proto, message_to_proto, recorddict_from_proto, recorddict_to_proto
from flwr.proto.message_pb2 import Message as ProtoMessage  # pylint: disable=E0611
from flwr.proto.message_pb2 import ObjectTree
from flwr.proto.recorddict_pb2 import RecordDict as ProtoRecordDict  # pylint: disable=E0611
from flwr.supercore.inflatable.inflatable_object import (
    get_all_nested_objects,
    get_object_tree,
    iterate_object_tree,
    no_object_id_recompute,
)
from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents

from .wire import FlowerIns, FlowerReply

__all__ = [
    "deflate",
    "error_reply",
    "exception_reason",
    "inflate",
    "metadata_of",
    "state_from_bytes",
    "state_to_bytes",
    "tree_ids",
]


def tree_ids(tree: ObjectTree) -> list[str]:
    """Every object id of ``tree`` (children first, as flwr iterates)."""
    return [node.object_id for node in iterate_object_tree(tree)]


def inflate(ins: FlowerIns) -> Message:
    """The pulled message, whole, with its own id set (the deflated form omits it)."""
    message = inflate_object_from_contents(ins.message_id, dict(ins.objects), keep_object_contents=False)
    if not isinstance(message, Message):
        raise TypeError(f"object {ins.message_id} is a {type(message).__name__}, not a Message")
    message.metadata.__dict__["_message_id"] = ins.message_id
    return message


def deflate(reply: Message, runtime_s: float = 0.0) -> FlowerReply:
    """``reply`` as ``PushMessages`` takes it: content-stripped proto, object tree, every object."""
    reply.metadata.__dict__["_message_id"] = reply.object_id
    with no_object_id_recompute():
        tree = get_object_tree(reply)
        objects = {object_id: obj.deflate() for object_id, obj in get_all_nested_objects(reply).items()}
        proto = message_to_proto(remove_content_from_message(reply))
    return FlowerReply(
        message=proto.SerializeToString(),
        tree=tree.SerializeToString(),
        objects=objects,
        run_id=reply.metadata.run_id,
        runtime_s=runtime_s,
        error_code=int(reply.error.code) if reply.has_error() else None,
    )


def metadata_of(message_proto: bytes) -> Message:
    """The content-less message ``PullMessages`` gave, from its serialised proto."""
    proto = ProtoMessage()
    proto.ParseFromString(message_proto)
    return message_from_proto(proto)


def error_reply(message_proto: bytes, code: int, reason: str) -> FlowerReply:
    """An error reply to the pulled message ``message_proto`` (``code`` from ``ErrorCode``)."""
    return deflate(Message(Error(code=code, reason=reason), reply_to=metadata_of(message_proto)))


def exception_reason(exc: BaseException) -> str:
    """An exception as Flower's node reports it: ``<class 'ZeroDivisionError'>:<'division by zero'>``."""
    try:
        text = str(exc)
    except BaseException:  # a broken __str__ must not cost the message its reply
        text = f"<{type(exc).__name__} whose message cannot be read>"
    return f"{type(exc)!s}:<'{text}'>"


def state_to_bytes(state: RecordDict) -> bytes:
    """A run's ``context.state`` as bytes (Flower's own ``RecordDict`` protobuf)."""
    return bytes(recorddict_to_proto(state).SerializeToString())


def state_from_bytes(data: bytes) -> RecordDict:
    """The ``context.state`` ``state_to_bytes`` kept."""
    proto = ProtoRecordDict()
    proto.ParseFromString(data)
    return recorddict_from_proto(proto)
