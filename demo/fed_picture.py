"""The FED's picture: drivers D1-D3 over nodes C1-C3, overlapping sets of nodes.

Each driver runs its own workload spread over its nodes; each node keeps one
client per workload (C1W1, C1W2, ...), each in its own process.
"""

from flower_actors import AppSpec, NodeConfig, TaskIns, local_federation

PLAN = {"D1": ["C1", "C2", "C3"], "D2": ["C1", "C2"], "D3": ["C2", "C3"]}
app = AppSpec("flower_actors.examples:FedExampleClient", {"work": 0.5})
nodes = [NodeConfig(node_id=n, app=app, long_poll=True) for n in ("C1", "C2", "C3")]

with local_federation(nodes) as fed:
    drivers = {name: fed.driver(name) for name in PLAN}
    submitted = {}
    for name, node_ids in PLAN.items():
        workload = f"W{name[1]}"
        tasks = [TaskIns.create(workload, f"{name} round {r}", node_id=n) for r in range(2) for n in node_ids]
        submitted[name] = drivers[name].submit(tasks)
    for name, ids in submitted.items():
        results = drivers[name].wait_for(ids, timeout=60)
        for r in sorted(results.values(), key=lambda r: (str(r.node_id), r.finished_at or 0)):
            print(f"{name}: {r.node_id}{r.workload_id} (pid {r.handler_pid}) -> {r.content}")
    for node_id in fed.node_ids:
        status = fed.status(node_id)
        print(f"{node_id}: {status.workloads_live} clients, {status.tasks_pulled} tasks")
