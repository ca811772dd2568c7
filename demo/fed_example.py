"""The FED's example on flower_actors: 100 clients, 400 tasks every 40 ms, 2 s handlers.

Run: python demo/fed_example.py [--clients N --tasks N --work S]
"""

import argparse
import random
import time

from flower_actors import AppSpec, run_node

parser = argparse.ArgumentParser()
parser.add_argument("--clients", type=int, default=100)
parser.add_argument("--tasks", type=int, default=400)
parser.add_argument("--work", type=float, default=2.0)
args = parser.parse_args()

app = AppSpec("flower_actors.examples:FedExampleClient", {"work": args.work})
with run_node(app=app, poll_interval=1.0) as node:  # the FED's once-a-second pull
    driver = node.driver()
    rng = random.Random(0)
    start = time.monotonic()
    ids = []
    for i in range(args.tasks):
        workload_id = rng.randint(0, args.clients - 1)
        ids.append(driver.submit_task(workload_id, f"Msg {i}"))
        time.sleep(0.04)
    results = driver.wait_for(ids, timeout=600)
    took = time.monotonic() - start
    for ins_id in ids[:5]:
        r = results[ins_id]
        print(f"Send from WL{r.workload_id}: {r.content}")
    print(f"{len(results)} results from {node.status().workloads_created} clients in {took:.1f} s")
