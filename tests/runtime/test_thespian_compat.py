"""Every Thespian internal the package reaches is there in the installed Thespian, and a missing one fails loudly."""

from __future__ import annotations

import configparser
import importlib.metadata
import os
import signal
from typing import Any

import pytest

from flower_actors import SystemConfig, ThespianIncompatible, secure_thespian, start_actor_system
from flower_actors.runtime import thespian_compat
from flower_actors.runtime.actor_base import SafeActor
from tests.proctools import REPO


def test_every_internal_exists_in_the_installed_thespian() -> None:
    thespian_compat.check_installed()


def test_the_pinned_thespian_is_the_one_checked() -> None:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    assert f"thespian=={thespian_compat.CHECKED_ON}" in setup["options"]["install_requires"]
    assert importlib.metadata.version("thespian") == thespian_compat.CHECKED_ON


def test_an_actor_without_the_transport_internals_raises_instead_of_guessing() -> None:
    class NoTransport:
        pass

    with pytest.raises(ThespianIncompatible, match=r"_myRef\.transport"):
        thespian_compat.pending_transmits(NoTransport())

    class Transport:
        pass

    class Ref:
        transport = Transport()

    class Actor:
        _myRef = Ref()

    with pytest.raises(ThespianIncompatible, match="_aTB_numPendingTransmits"):
        thespian_compat.pending_transmits(Actor())


def test_a_system_without_a_clone_raises() -> None:
    with pytest.raises(ThespianIncompatible, match="external_clone"):
        thespian_compat.private_endpoint(object())


def test_the_poll_selector_reports_what_the_transport_loop_reads() -> None:
    import errno
    import selectors
    import socket

    a, b = socket.socketpair()
    try:
        selector = thespian_compat.PollSelector()
        selector.register(a.fileno(), selectors.EVENT_READ)
        selector.register(b.fileno(), selectors.EVENT_WRITE)
        with pytest.raises(KeyError):
            selector.register(a.fileno(), selectors.EVENT_READ)
        assert [(key.fd, ev) for key, ev in selector.select(0)] == [(b.fileno(), selectors.EVENT_WRITE)]
        b.send(b"x")
        ready = {key.fd: ev for key, ev in selector.select(1.0)}
        assert ready == {a.fileno(): selectors.EVENT_READ, b.fileno(): selectors.EVENT_WRITE}
        selector.close()
        closed = socket.socket()
        fd = closed.detach()
        os.close(fd)
        selector = thespian_compat.PollSelector()
        selector.register(fd, selectors.EVENT_READ)
        with pytest.raises(OSError) as raised:  # as epoll's register would; the transport loop handles it
            selector.select(0)
        assert raised.value.errno == errno.EBADF
    finally:
        a.close()
        b.close()


def test_the_transport_loop_uses_the_poll_selector_once_secured() -> None:
    from thespian.system.transport import TCPTransport as tcp

    from flower_actors import secure_thespian

    secure_thespian()
    assert tcp.selectors.DefaultSelector is thespian_compat.PollSelector
    import selectors

    assert selectors.DefaultSelector is not thespian_compat.PollSelector, "the real module is untouched"


def test_connection_bookkeeping_keeps_hashes_and_expiry_and_never_sends_a_hash() -> None:
    import pickle
    from datetime import timedelta

    from thespian.system.transport import TCPTransport as tcp

    from flower_actors import secure_thespian

    secure_thespian()
    ipbase = thespian_compat.import_ipbase_offline()
    address = ipbase.IPActorAddress(2, 1, 6, "127.0.0.1", 45678)
    same = ipbase.IPActorAddress(2, 1, 6, "127.0.0.1", 45678)
    assert hash(address) == hash(same) == hash(address), "computed once, equal for equal addresses"
    assert "_fa_hash" in vars(address) and "_fa_hash" not in pickle.loads(pickle.dumps(address)).__dict__
    assert {address: 1}[same] == 1
    idle = tcp.IdleSocket(None, address)
    assert not idle.expired()
    original = tcp.MAX_IDLE_SOCKET_PERIOD
    tcp.MAX_IDLE_SOCKET_PERIOD = timedelta(0)
    try:
        assert tcp.IdleSocket(None, address).expired()
    finally:
        tcp.MAX_IDLE_SOCKET_PERIOD = original


class SignalReport(SafeActor):
    def receive_str(self, message: str, sender: Any) -> None:
        handlers = {name: signal.getsignal(getattr(signal, name)) for name in ("SIGHUP", "SIGTERM", "SIGUSR2")}
        self.send(sender, {name: callable(h) for name, h in handlers.items()})


def test_actor_processes_still_set_a_handler_for_every_catchable_signal() -> None:
    from thespian.system import multiprocCommon

    secure_thespian()
    assert multiprocCommon.set_signal_handler is not signal.signal, "the direct one, without enum wrapping"
    handle = start_actor_system(SystemConfig())
    try:
        reply = handle.system.ask(handle.system.createActor(SignalReport), "which", 20)
        assert reply == {"SIGHUP": True, "SIGTERM": True, "SIGUSR2": True}, reply
    finally:
        handle.shutdown()
