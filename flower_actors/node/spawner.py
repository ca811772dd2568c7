"""``Spawner``: the template process every WorkloadClient of a node is forked from.

The LeadClient never forks. It creates one Spawner when it starts, while
its own memory is still small, and asks it for new WorkloadClients in
batches (``SpawnWorkloadClients``). A fork from the LeadClient cost it
milliseconds that grew with everything it held (page tables, sockets, a
copy-on-write fault for each page it wrote after every fork), and each
child inherited and then copied that state; the Spawner holds almost
nothing, so forking is cheap, the LeadClient goes on routing meanwhile,
and the children share the Spawner's clean pages.

Thespian makes the Spawner the WorkloadClients' parent, so their
``ChildActorExited`` reaches it; it passes each on to the LeadClient as
``WorkloadClientExited`` with the process's incarnation. It opens each new
WorkloadClient's listening socket before the fork (``runtime.listen_ahead``),
so its answer to a turn (``SpawnTurnDone``) tells the LeadClient where each
listens; a process of the warm pool reports its address itself, and until
then what the LeadClient sends it goes through here (``ForwardToChild``).
The turn's forks follow each other with almost nothing between them
(``fork_message.create_many``): a page the Spawner writes between two forks
is copied, and the old copy stays the private memory of the child forked
before.

Before its first fork it runs a WorkloadClient's task path itself, with a
handler that does nothing (``rehearsal``): CPython's specializing of the
bytecode that path runs is then done once, here, and inherited, instead of
done (and its pages copied) in every child.

With ``NodeConfig.share_imports`` the Spawner also imports each app module
a WorkloadClient has imported cleanly (``SpawnWorkloadClients.imports``),
so the children forked after that start with it loaded: importing the
benchmark's app took a third of a new WorkloadClient's start-up (compiled
afresh in each: ``PYTHONDONTWRITEBYTECODE``), and the module's pages are
then shared instead of copied in each.
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
from dataclasses import replace
from typing import Any

from thespian.actors import ActorAddress, ChildActorExited

from ..messages import describe_exception
from ..runtime import listen_ahead
from ..runtime.actor_base import SafeActor
from ..runtime.fork_message import create_many
from ..runtime.forked_start import leave_titles_to_actors, make_faults_fatal
from ..runtime.lean_fork import use_lean_forks
from ..runtime.thespian_compat import close_idle_connections, release_child_pipes
from .rehearsal import rehearse
from .wire import ForwardToChild, SpawnTurnDone, SpawnWorkloadClients, StartWorkloadClient, WorkloadClientExited
from .workload_client import WorkloadClient

__all__ = ["Spawner"]

log = logging.getLogger(__name__)


class Spawner(SafeActor):
    """Creates WorkloadClients for its parent LeadClient and tells it when one ends."""

    def __init__(self) -> None:
        super().__init__()
        self.lead: ActorAddress | None = None
        self.children: dict[int, ActorAddress] = {}  # incarnation -> address (Thespian's local one)
        make_faults_fatal()  # here once, inherited by every child
        leave_titles_to_actors()  # a child's title is set by the child
        rehearse()  # the task path run once here: every child inherits its interpreter work done

    def receive_SpawnWorkloadClients(self, message: SpawnWorkloadClients, sender: ActorAddress) -> None:
        self.lead = sender
        for module in message.imports:
            self._import(module)
        close_idle_connections(self, keep=sender)  # to the processes it started before: they need no more
        # A child's collections then never visit (and so never copy) the pages it shares with us, nor do ours
        # (our heap grows with every child). Frozen objects are never collected: collect what is garbage first
        # (only what is newer than the last freeze is visited).
        gc.collect()
        gc.freeze()
        use_lean_forks(self)
        pids: list[tuple[int, int]] = []
        addresses: list[tuple[int, ActorAddress | None]] = []
        announced = listen_ahead.available(self)  # each new WorkloadClient's address goes with this turn's answer
        firsts = [
            replace(m, announced=True) if announced and isinstance(m, StartWorkloadClient) else m
            for _, m in message.starts
        ]
        # Each fork carries its child's first message. The forks follow each other with almost nothing between
        # them: what the Spawner writes between two forks stays the private copy of the child forked before.
        created = create_many(self, WorkloadClient, firsts)
        if created:
            release_child_pipes(self)  # or every later child inherits two pipes per sibling
        for (incarnation, _), first, made in zip(message.starts, firsts, created, strict=True):
            if made.failed:  # no process: the LeadClient answers its tasks as for one that died
                self.send(sender, WorkloadClientExited(incarnation))
                continue
            self.children[incarnation] = made.child
            if made.pid is not None:
                pids.append((incarnation, made.pid))
            if isinstance(first, StartWorkloadClient) and first.announced:  # None (not forked): reached through here
                addresses.append((incarnation, made.reachable_at))
        if message.starts:
            self.send(sender, SpawnTurnDone(tuple(pids), tuple(addresses)))

    @staticmethod
    def _import(module: str) -> None:
        """Import a module a WorkloadClient imported cleanly, so the children forked next have it loaded."""
        if module in sys.modules:
            return
        try:
            importlib.import_module(module)
        except BaseException as exc:  # it imported cleanly in a WorkloadClient: say why not here, go on without
            log.warning("Spawner: importing %s for its WorkloadClients failed: %s", module, describe_exception(exc))

    def receive_ForwardToChild(self, message: ForwardToChild, sender: ActorAddress) -> None:
        child = self.children.get(message.incarnation)
        if child is not None:
            self.send(child, message.message)

    def receive_ChildActorExited(self, message: ChildActorExited, sender: ActorAddress) -> None:
        incarnation = self._incarnation_of(message.childAddress)
        if incarnation is None:
            log.debug("Spawner: a second exit notice, or of an unknown child: %s", message.childAddress)
            return
        del self.children[incarnation]
        if self.lead is not None:
            self.send(self.lead, WorkloadClientExited(incarnation))

    def _incarnation_of(self, address: Any) -> int | None:
        # Thespian's local addresses compare equal to the real one once the child connected, but do not
        # hash alike: a scan, newest first (short-lived processes end first).
        for incarnation in reversed(self.children):
            if self.children[incarnation] == address:
                return incarnation
        return None
