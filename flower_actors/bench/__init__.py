"""``python -m flower_actors.bench``: our runtime beside two baselines, on the same work, in one run.

- ``ours``: flower_actors (embedded server, one LeadClient, WorkloadClient processes);
- ``thread-pool``: the FED's own design (an asyncio router, one client object per
  workload, handlers in one shared ``ThreadPoolExecutor`` of Python's default size);
- ``raw-processes``: a hand-written process per workload fed by ``multiprocessing``
  pipes, results back to one collector: the same work with no actor framework.
"""
