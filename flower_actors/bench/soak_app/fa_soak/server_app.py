"""Send ``per-round`` messages to every node per round; check each is answered exactly once; record in ``out``."""

import json
import time

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    nodes: list[int] = []
    while not nodes:
        nodes = sorted(grid.get_node_ids())
        if not nodes:
            time.sleep(0.5)
    totals = {"sent": 0, "answered": 0, "twice": 0, "unanswered": 0}
    codes: dict[str, int] = {}
    missing: list[str] = []
    for rnd in range(1, int(cfg["rounds"]) + 1):
        messages = [
            Message(RecordDict({"config": ConfigRecord({"round": rnd, "i": i})}), dst_node_id=n, message_type="train")
            for n in nodes
            for i in range(int(cfg["per-round"]))
        ]
        ids = set(grid.push_messages(messages))
        totals["sent"] += len(ids)
        seen: dict[str, int] = {}
        deadline = time.time() + float(cfg["round-timeout-s"])
        while len(seen) < len(ids) and time.time() < deadline:
            for reply in grid.pull_messages([i for i in ids if i not in seen]):
                key = reply.metadata.reply_to_message_id
                seen[key] = seen.get(key, 0) + 1
                code = str(reply.error.code) if reply.has_error() else "ok"
                codes[code] = codes.get(code, 0) + 1
            time.sleep(0.2)
        totals["answered"] += sum(1 for i in ids if seen.get(i))
        totals["twice"] += sum(1 for i in ids if seen.get(i, 0) > 1)
        totals["unanswered"] += sum(1 for i in ids if not seen.get(i))
        missing.extend(i for i in ids if not seen.get(i))
    record = {"run_id": context.run_id, **totals, "codes": codes, "missing": missing}
    if cfg["out"]:
        with open(str(cfg["out"]), "w", encoding="utf-8") as out:
            json.dump(record, out)
    if totals["unanswered"] or totals["twice"]:
        raise RuntimeError(f"messages unanswered or answered twice: {record}")
