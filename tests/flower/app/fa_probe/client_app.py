"""The probe's ClientApp: counts its messages in ``context.state``, echoes a payload, raises or dies when told."""

import os
import signal
import time

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()

LOADED_AT = time.time()  # once per process: tells a resident app from one loaded per message


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Count this message, check the run's identity, return the payload summed and the state seen."""
    began = time.time()
    config = msg.content["config"]
    rnd = int(config["round"])
    state = context.state.get("probe")
    if state is None:
        state = ConfigRecord({"count": 0, "run_id": context.run_id, "rounds": []})
        context.state["probe"] = state
    state["count"] = int(state["count"]) + 1
    state["rounds"] = [*list(state["rounds"]), rnd]
    if rnd == int(context.run_config["raise-round"]):
        raise ZeroDivisionError(f"probe raised in round {rnd}")
    if rnd == int(context.run_config["die-round"]):
        os.kill(os.getpid(), signal.SIGKILL)
    if rnd == int(context.run_config["exit-round"]):
        os._exit(3)
    hang = float(context.run_config["hang-round-s"])
    if hang and rnd == int(context.run_config["hang-round"]):
        time.sleep(hang)
    time.sleep(float(context.run_config["work-s"]))
    arrays = msg.content.array_records.get("arrays")
    total = float(sum(float(a.numpy().sum()) for a in arrays.values())) if arrays else 0.0
    reply = RecordDict(
        {
            "metrics": MetricRecord({"count": int(state["count"]), "sum": total}),
            "seen": ConfigRecord(
                {
                    "pid": os.getpid(),
                    "loaded_at": LOADED_AT,
                    "state_run_id": int(state["run_id"]),
                    "context_run_id": int(context.run_id),
                    "node_id": int(context.node_id),
                    "rounds": list(state["rounds"]),
                    "run_config_rounds": int(context.run_config["rounds"]),
                    "began": began,
                    "ended": time.time(),
                }
            ),
        }
    )
    if arrays:
        reply["arrays"] = ArrayRecord([np.asarray(a.numpy()) + 1 for a in arrays.values()])
    return Message(reply, reply_to=msg)
