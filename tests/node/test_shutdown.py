"""The node's stop, without processes."""

from __future__ import annotations

from flower_actors.node.shutdown import DEFAULT_STOP_TIMEOUT, Shutdown


def test_the_first_request_starts_the_stop_and_every_asker_gets_the_one_reply() -> None:
    shutdown = Shutdown()
    assert not shutdown.active
    assert shutdown.request("a", 2.0, now=10.0) and shutdown.deadline == 12.0
    assert not shutdown.request("b", 99.0, now=11.0), "later requests wait for the same stop"
    assert not shutdown.overdue(11.9) and shutdown.overdue(12.0)
    assert shutdown.begin_draining() and not shutdown.begin_draining()
    assert shutdown.finished("node", 5, 0) == ["a", "b"]
    assert shutdown.reply is not None and shutdown.reply.results_pushed == 5
    assert shutdown.finished("node", 6, 0) == [], "said once"


def test_a_bad_timeout_uses_the_default() -> None:
    shutdown = Shutdown()
    shutdown.request("a", "soon", now=0.0)
    assert shutdown.deadline == DEFAULT_STOP_TIMEOUT
