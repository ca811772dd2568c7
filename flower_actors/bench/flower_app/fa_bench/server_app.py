"""FedAvg over every node for ``rounds`` rounds; fails the run if a node did not reply."""

import time

import numpy as np
from flwr.app import ArrayRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    nodes: list[int] = []
    while not nodes:
        nodes = list(grid.get_node_ids())
        if not nodes:
            time.sleep(0.5)
    weights = [np.zeros(int(context.run_config["size"]), dtype=np.float32)]
    for rnd in range(1, int(context.run_config["rounds"]) + 1):
        content = RecordDict({"arrays": ArrayRecord(weights)})
        messages = [Message(content, dst_node_id=n, message_type="train", group_id=str(rnd)) for n in nodes]
        replies = [r for r in grid.send_and_receive(messages, timeout=600) if not r.has_error()]
        if len(replies) != len(nodes):
            raise RuntimeError(f"round {rnd}: {len(replies)} good replies from {len(nodes)} nodes")
        weights = [np.mean([r.content.array_records["arrays"].to_numpy_ndarrays()[0] for r in replies], axis=0)]
