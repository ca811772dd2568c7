"""The FED's picture: three drivers, three nodes, overlapping sets of nodes."""

from __future__ import annotations

from collections.abc import Callable

from flower_actors import LocalFederation, NodeConfig, TaskIns


def test_three_drivers_over_overlapping_nodes(federation: Callable[..., LocalFederation]) -> None:
    # Prepare: D1 on nodes 1-3, D2 on nodes 1-2, D3 on nodes 2-3; each driver its own workload
    nodes = [NodeConfig(node_id=f"C{n}", app="tests.apps:Recorder", long_poll=True) for n in (1, 2, 3)]
    fed = federation(*nodes)
    plan = {"D1": ["C1", "C2", "C3"], "D2": ["C1", "C2"], "D3": ["C2", "C3"]}
    drivers = {name: fed.driver(name) for name in plan}

    # Execute: every driver submits first, then each collects
    submitted = {}
    for name, node_ids in plan.items():
        tasks = [TaskIns.create(f"W{name[1]}", f"{name}-{n}-{i}", node_id=n) for n in node_ids for i in range(3)]
        submitted[name] = {t.task_id: t for t in tasks}
        drivers[name].submit(tasks)
    collected = {name: drivers[name].wait_for(submitted[name], timeout=30) for name in plan}

    # Assert: each driver got exactly its own results, each handled on the node it was addressed to
    for name, results in collected.items():
        assert set(results) == set(submitted[name])
        for ins_id, r in results.items():
            task = submitted[name][ins_id]
            assert r.ok and r.node_id == task.node_id and r.workload_id == f"W{name[1]}"
            assert r.content["history"][-1] == task.content
            assert r.content["pid"] in fed.status(task.node_id).handler_pids
    # C1W1 and C1W2 are different clients (processes) on one node
    assert fed.status("C1").workloads_live == 2 and fed.status("C2").workloads_live == 3
    assert fed.status("C3").workloads_live == 2
