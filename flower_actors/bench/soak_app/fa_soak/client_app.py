"""Count messages in ``context.state``; raise in ``raise-rate`` of them, exit the process in ``exit-rate``."""

import os
import random
import time

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    cfg = context.run_config
    draw = random.Random(f"{context.run_id}/{msg.metadata.message_id}").random()
    state = context.state.config_records.get("soak") or ConfigRecord({"count": 0})
    count = int(str(state["count"])) + 1
    state["count"] = count
    context.state["soak"] = state
    if draw < float(cfg["raise-rate"]):
        raise RuntimeError("the soak's ClientApp raised, as told")
    if draw < float(cfg["raise-rate"]) + float(cfg["exit-rate"]):
        os._exit(1)
    time.sleep(float(cfg["work-s"]))
    return Message(RecordDict({"metrics": MetricRecord({"count": count})}), reply_to=msg)
