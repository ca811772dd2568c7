"""Train: wait ``train-s`` (the training time), return the weights moved towards 1."""

import time

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    weights = msg.content.array_records["arrays"].to_numpy_ndarrays()
    time.sleep(float(context.run_config["train-s"]))
    updated = [w + 0.1 * (1.0 - w) for w in weights]
    content = RecordDict({"arrays": ArrayRecord(updated), "metrics": MetricRecord({"num-examples": 100})})
    return Message(content, reply_to=msg)
