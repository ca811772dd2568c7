"""A pass of Thespian's TCP loop whose cost does not grow with every idle connection.

``TCPTransport._runWithExpiry`` (Thespian 4.0.1) visits every connection it
keeps open on every pass: it hashes the peer's address, looks the connection
up, asks whether it was readable and whether it expired. The LeadClient and
the Sender keep one such connection per WorkloadClient, so at 1,000 workloads
that visit was a third of their time. ``run_with_expiry`` is the same loop,
statement for statement, except for its last step over idle connections: it
visits only those that were readable, or that this pass replaced or removed
(exactly the ones for which Thespian's own step does more than ask about
expiry), and asks every connection about expiry once per ``EXPIRY_SWEEP_S``
instead of on every pass (connections expire after 20 minutes).

The loop is Thespian's code (MIT licence, Copyright Kevin Quick), adapted.
``install()`` puts it in place only when the installed loop is the one it
was adapted from (``ADAPTED_FROM``, the hash of its source); otherwise
Thespian's own loop stays, and nothing but speed is lost.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import time
from typing import Any

from .idle_table import IdleTable, wait

__all__ = ["ADAPTED_FROM", "EXPIRY_SWEEP_S", "install", "installed"]

log = logging.getLogger(__name__)

ADAPTED_FROM = "5a6c512c48e9fd0ab13cbc2ca91db058c7322a4af4af658a930631ccdbd51f96"
"""SHA-256 of the source of Thespian 4.0.1's ``TCPTransport._runWithExpiry``."""
EXPIRY_SWEEP_S = 1.0
"""How often every idle connection is asked whether it expired (Thespian asks on every pass)."""


def installed() -> bool:
    """Whether Thespian's TCP transport runs ``run_with_expiry``."""
    from thespian.system.transport import TCPTransport as tcp

    return getattr(tcp.TCPTransport._runWithExpiry, "_flower_actors", False)


def install() -> bool:
    """Make Thespian's TCP transport run ``run_with_expiry``; whether it does (see the module's text)."""
    from thespian.system.transport import TCPTransport as tcp

    if installed():
        return True
    try:
        source = inspect.getsource(tcp.TCPTransport._runWithExpiry)
    except (OSError, TypeError):
        source = ""
    if hashlib.sha256(source.encode()).hexdigest() != ADAPTED_FROM:
        log.debug("Thespian's TCP loop is not the one tcp_loop was adapted from: it stays as it is")
        return False
    tcp.TCPTransport._runWithExpiry = run_with_expiry
    return True


def _to_visit(transport: Any, table: IdleTable, ready: list[Any], fast: bool, rrecv: list[int]) -> list[Any]:
    """The idle connections Thespian's step does more for than ask about expiry: those readable, and those
    this pass removed or replaced (each once); every one once per ``EXPIRY_SWEEP_S``, or if the pass was
    Thespian's own."""
    now = time.monotonic()
    if not fast or now >= getattr(transport, "_fa_next_expiry_sweep", 0.0):
        transport._fa_next_expiry_sweep = now + EXPIRY_SWEEP_S
        everyone = [i for i in (*table.values(), *table.removed) if getattr(i, "_fa_pass", 0) < table.pass_no]
        table.resync()  # it lists the table as it is: a socket closed in it is seen again
        return list({id(i): i for i in everyone}.values())
    before = [i for i in table.removed if getattr(i, "_fa_pass", 0) < table.pass_no]
    return list({id(i): i for i in (*ready, *before)}.values()) if before else ready


def _waitable(fd: int, sock: Any) -> Any:
    """What a pass waits on for an incoming connection kept under ``fd``: its socket, or (closed, or gone: an error
    inside the loop's exclusive section would leave it held for ever) the number, as Thespian's own loop waits."""
    try:
        return sock if sock is not None and sock.fileno() == fd else fd
    except (AttributeError, OSError):
        return fd


def _numbers(items: list[Any]) -> list[int]:
    """Descriptors of sockets (a closed one: -1) and descriptors, as Thespian's own wait takes them."""
    numbers = []
    for item in items:
        try:
            numbers.append(item if isinstance(item, int) else item.fileno())
        except OSError:
            numbers.append(-1)
    return numbers


def run_with_expiry(self: Any, incomingHandler: Any) -> Any:
    """``TCPTransport._runWithExpiry`` with a cheaper step over idle connections (see the module)."""
    from thespian.system.transport import TCPTransport as tcp

    errno, selectors, currentTime = tcp.errno, tcp.selectors, tcp.currentTime
    TransmitOnly, exclusive_processing = tcp.TransmitOnly, tcp.exclusive_processing
    TCPTransport, thesplog = tcp.TCPTransport, tcp.thesplog
    xmitOnly = incomingHandler == TransmitOnly or isinstance(incomingHandler, TransmitOnly)

    if hasattr(self, "_aborting_run"):
        delattr(self, "_aborting_run")
    table: IdleTable | None = None
    idle_ready: list[Any] = []

    while not hasattr(self, "_aborting_run") or (
        self._aborting_run and (len(self._transmitIntents) > 0 or len(self._waitingTransmits) > 0)
    ):
        ct = currentTime()
        if self.run_time.view(ct).expired():
            break

        if xmitOnly:
            if not self._transmitIntents and not self._waitingTransmits:
                return 0
        else:
            while self._incomingEnvelopes:
                rEnv = self._incomingEnvelopes.pop(0)
                if incomingHandler is None:
                    return rEnv
                r = tcp.Thespian__Run_HandlerResult(incomingHandler(rEnv))
                if not r:
                    return r

        with exclusive_processing(self):
            # Changed: sockets, not their numbers, so that the wait keeps them registered while they are waited on.
            wsend, wrecv = tcp.fmap(
                lambda T: T.socket,
                tcp.partition(
                    TCPTransport._waitForSendable,
                    [T for T in self._transmitIntents.values() if getattr(T, "socket", None) and not T.backoffPause()],
                ),
            )
            wrecv.extend(
                [
                    _waitable(fd, inc.socket)
                    for fd, inc in self._incomingSockets.items()
                    if fd and not inc.backoffPause()
                ]
            )

            # Changed: the idle connections are registered in their table as it changes (IdleTable), not here,
            # unless one of them has a closed socket: then this pass is Thespian's own.
            table = getattr(self, "_openSockets", None)
            if table is not None and type(table) is not IdleTable:
                table = self._openSockets = IdleTable(table)
            fast = table is not None and not table.closed_seen
            if table is not None and not fast:
                wrecv.extend([s.socket for s in table.values()])

            delays = list(
                filter(
                    None,
                    [self.run_time.view(ct).remaining()]
                    + [self._transmitIntents[T].delay(ct) for T in self._transmitIntents]
                    + [W.delay() for W in self._waitingTransmits]
                    + [self._incomingSockets[fd].delay(ct) for fd in self._incomingSockets],
                )
            )
            delay = max(0, tcp.timePeriodSeconds(min(delays))) if delays else None

            if not xmitOnly:
                wrecv.append(self.socket)

            if self._watches:
                wrecv.extend(self._watches)

        rrecv: list[int] = []
        rsend: list[int] = []
        rerr: list[Any] = []
        try:
            if fast and table is not None:
                rrecv, rsend = wait(table, wrecv, wsend, delay)
            else:
                wrecv, wsend = _numbers(wrecv), _numbers(wsend)
                sel = selectors.DefaultSelector()
                for each in wrecv:
                    sel.register(each, selectors.EVENT_READ)
                for each in wsend:
                    sel.register(each, selectors.EVENT_WRITE)
                events = sel.select(delay)
                for key, event in events:
                    if event & selectors.EVENT_READ:
                        rrecv.append(key.fd)
                    if event & selectors.EVENT_WRITE:
                        rsend.append(key.fd)
                sel.close()
        except (OSError, ValueError) as ex:
            wrecv, wsend = _numbers(wrecv), _numbers(wsend)
            if (
                fast and table is not None
            ):  # Thespian's own checks below look at every descriptor waited on: the idle ones too
                wrecv.extend(table.by_fd)
                table.resync()
            thesplog("selector exception: %s", ex, level=logging.DEBUG)
            errnum = errno.EBADF if isinstance(ex, ValueError) else getattr(ex, "errno", ex.args[0])
            if tcp.err_select_retry(errnum):
                thesplog("select retry on %s", ex, level=logging.DEBUG)
                self._check_indicators()
                continue
            if tcp.err_bad_fileno(errnum):
                if errnum == errno.EBADF:
                    bad = []
                    for each in self._watches:
                        try:
                            TCPTransport._check_fd(each)
                        except Exception as ex:
                            thesplog("watcher %s is bad: %", each, ex)
                            bad.append(each)
                    if not bad:
                        thesplog("bad internal file descriptor!")
                        try:
                            TCPTransport._check_fd(self.socket.fileno())
                        except Exception as ex:
                            thesplog("listen %s is bad: %s", self.socket.fileno, ex)
                            rerr.append(self.socket.fileno)
                        for each in wrecv:
                            try:
                                TCPTransport._check_fd(each)
                            except Exception as ex:
                                thesplog("wrecv %s is bad: %s", each, ex)
                                rerr.append(each)
                        for each in wsend:
                            try:
                                TCPTransport._check_fd(each)
                            except Exception:
                                thesplog("wsend %s is bad", each)
                                rerr.append(each)
                    else:
                        self._watches = [W for W in self._watches if W not in bad]
                        continue
            else:
                raise

        # Changed: what Thespian's step over idle connections needs from the moment the wait ended.
        if table is not None:
            table.pass_no += 1
            table.removed = []
            idle_ready = [table.by_fd[fd] for fd in rrecv if fd in table.by_fd] if fast else []

        with exclusive_processing(self):
            if rerr:
                for errfileno in rerr:
                    self._cancel_fd_ops(errfileno)

            origPendingSends = len(self._transmitIntents) + len(self._waitingTransmits)

            for each in rrecv:
                if each == self.socket.fileno() and not xmitOnly:
                    self._acceptNewIncoming()
                    continue

                if each in self._incomingSockets:
                    incoming = self._incomingSockets[each]
                    del self._incomingSockets[each]
                    incoming = self._handlePossibleIncoming(incoming, each, has_exclusive_flag=True)
                    if incoming:
                        self._incomingSockets[incoming.socket.fileno()] = incoming
                    continue

                if self._processIntents(each):
                    continue

            # Changed: Thespian's own step for each idle connection, run only for those it would do more for
            # than ask about expiry (and for every one once per EXPIRY_SWEEP_S).
            visit = _to_visit(self, table, idle_ready, fast, rrecv) if table is not None else []
            for idle in visit:
                rmtaddr = idle.rmtaddr
                curOpen = getattr(self, "_openSockets", dict()).get(tcp.opsKey(rmtaddr), None)
                if curOpen and curOpen != idle:
                    tcp._safeSocketShutdown(idle)
                else:
                    fnum = None
                    try:
                        fnum = idle.socket.fileno()
                    except OSError as ex:
                        if not tcp.err_bad_fileno(ex.errno):
                            raise
                    if fnum is None or fnum in rrecv:
                        if hasattr(self, "_openSockets") and tcp.opsKey(rmtaddr) in self._openSockets:
                            del self._openSockets[tcp.opsKey(rmtaddr)]
                        if fnum:
                            incoming = self._handlePossibleIncoming(
                                tcp.TCPIncomingPersistent(rmtaddr, idle.socket), fnum, has_exclusive_flag=True
                            )
                            if incoming:
                                self._incomingSockets[incoming.socket.fileno()] = incoming
                    elif idle.expired():
                        tcp._safeSocketShutdown(idle)
                        if hasattr(self, "_openSockets") and tcp.opsKey(rmtaddr) in self._openSockets:
                            del self._openSockets[tcp.opsKey(rmtaddr)]

            for eachs in rsend:
                self._processIntents(eachs)

            self._processIntentTimeouts()
            rmvIncoming = []
            for I in self._incomingSockets:  # noqa: E741
                newI = self._handlePossibleIncoming(self._incomingSockets[I], -1, has_exclusive_flag=True)
                if newI:
                    self._incomingSockets[I] = newI
                else:
                    rmvIncoming.append(I)
            for I in rmvIncoming:  # noqa: E741
                del self._incomingSockets[I]

            watchready = [W for W in self._watches if W in rrecv]
            if watchready:
                self._incomingEnvelopes.append(tcp.ReceiveEnvelope(self.myAddress, tcp.WatchMessage(watchready)))

        senddone = self._finished_intents
        self._finished_intents = []
        for intent, sts in senddone:
            intent.tx_done(sts)

        if rrecv == [] and rsend == []:
            if rerr == [] and self.run_time.view().expired():
                return tcp.Thespian__Run_Expired()
            continue

        if xmitOnly:
            remXmits = len(self._transmitIntents) + len(self._waitingTransmits)
            if origPendingSends > remXmits or remXmits == 0:
                return remXmits

        if not xmitOnly:
            while self._incomingEnvelopes:
                rEnv = self._incomingEnvelopes.pop(0)
                if incomingHandler is None:
                    return rEnv
                r = tcp.Thespian__Run_HandlerResult(incomingHandler(rEnv))
                if not r:
                    return r
    return None


run_with_expiry._flower_actors = True  # type: ignore[attr-defined]
