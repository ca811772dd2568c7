"""The actor runtime under a node: starting and stopping systems, transport security, Thespian's internals, and
small mechanisms every actor shares (``SafeActor``, ``Backoff``, ``RecentIds``, the ``/proc`` reader)."""
