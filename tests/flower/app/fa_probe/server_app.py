"""The probe's ServerApp: one train message per node per round; records every reply in ``out`` as JSON."""

import json
import time

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the rounds, record what came back, and fail the run if a check failed."""
    cfg = context.run_config
    started = time.time()
    deadline = started + float(cfg["timeout-s"])
    nodes: list[int] = []
    while len(nodes) < int(cfg["min-nodes"]) and time.time() < deadline:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) < int(cfg["min-nodes"]):
            time.sleep(0.5)
    record = {"run_id": context.run_id, "started": started, "nodes": nodes, "rounds": [], "failures": []}
    payload = np.arange(int(cfg["payload-kb"]) * 128, dtype=np.float64)  # 8 bytes each: payload-kb KiB
    for rnd in range(1, int(cfg["rounds"]) + 1):
        content = RecordDict({"config": ConfigRecord({"round": rnd})})
        if payload.size:
            content["arrays"] = ArrayRecord([payload])
        messages = [Message(content, dst_node_id=node, message_type="train", group_id=str(rnd)) for node in nodes]
        sent_at = time.time()
        replies = list(grid.send_and_receive(messages, timeout=max(1.0, deadline - time.time())))
        entry = {"round": rnd, "sent_at": sent_at, "done_at": time.time(), "replies": []}
        for reply in replies:
            item: dict = {"node": reply.metadata.src_node_id}
            if reply.has_error():
                item["error_code"] = int(reply.error.code)
                item["error_reason"] = reply.error.reason
            else:
                item["count"] = int(reply.content["metrics"]["count"])
                item["sum"] = float(reply.content["metrics"]["sum"])
                item.update({k: v for k, v in reply.content["seen"].items()})
                if payload.size:
                    back = reply.content["arrays"].to_numpy_ndarrays()[0]
                    item["payload_ok"] = bool(back.shape == payload.shape and np.array_equal(back, payload + 1))
                if item["context_run_id"] != context.run_id or item["state_run_id"] != context.run_id:
                    record["failures"].append(f"round {rnd}: a reply saw another run's state: {item}")
            entry["replies"].append(item)
        if len(replies) != len(nodes):
            record["failures"].append(f"round {rnd}: {len(replies)} replies from {len(nodes)} nodes")
        record["rounds"].append(entry)
    record["finished"] = time.time()
    if cfg["out"]:
        with open(str(cfg["out"]), "w", encoding="utf-8") as out:
            json.dump(record, out)
    if record["failures"]:
        raise RuntimeError("; ".join(record["failures"]))
