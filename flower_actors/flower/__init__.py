"""A node for a real Flower 1.42 SuperLink: ``flower-actors-supernode``.

Every ``flwr`` import of the package sits in this subpackage, and only in
modules that need it; ``import flower_actors`` never imports flwr (install
the ``flower`` extra to use this one). The pieces::

    environment   what every flwr process needs before flwr is imported (no telemetry, no proxies)
    wire          the plain, picklable forms of a Flower message that travel between actors
    codec         Message <-> wire forms (flwr)
    fleet         FleetSession: the Fleet API calls of one node, errors classified (flwr)
    heartbeat     the heartbeat thread, on its own schedule and its own connection
    fabs          FabStore: each FAB installed once per hash, never two installs at once
    runs          RunBook: which runs are known, which messages wait for their reply (plain)
    link          SuperLinkLink: the server-link actor (NodeLink) in front of the SuperLink
    run_client    FlowerRunClient: one per run, in the run's WorkloadClient; the ClientApp resident
    supernode     start and stop a whole node; ``main()`` is the console script
"""

from __future__ import annotations

__all__: list[str] = []
