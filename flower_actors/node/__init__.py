"""The node: the ``LeadClient`` (the mediator), the parts it carries out decisions of, and its actors.

A task's path: ``lead_client`` (pull, route, feed) → ``workload_client``
(handle) → ``sender`` (push). The parts, plain objects with no Thespian in
them: ``intake`` (pull schedule, validation), ``routing`` (the workload
table), ``pool`` (processes), ``recovery`` (what is owed when processes end
or hang), ``shutdown``; ``workload`` holds their records and decisions,
``wire`` the messages between the node's actors.
"""
