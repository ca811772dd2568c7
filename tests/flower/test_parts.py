"""The Flower node's plain parts, without processes: the pending journal, the node identity, the run book,
the Context state codec, error classification."""

from __future__ import annotations

from pathlib import Path

import httpx
from flwr.app import ConfigRecord, RecordDict

from flower_actors.errors import SuperLinkTLSError, SuperLinkUnreachable
from flower_actors.flower.codec import state_from_bytes, state_to_bytes
from flower_actors.flower.fleet_errors import classify, cut_off, speaks_tls
from flower_actors.flower.harness import free_port
from flower_actors.flower.identity import NodeIdentity
from flower_actors.flower.journal import PendingJournal
from flower_actors.flower.runs import RunBook


def test_the_journal_keeps_what_is_pending_across_instances_and_forgets_what_was_answered(tmp_path: Path) -> None:
    journal = PendingJournal(tmp_path / "pending")
    journal.record("a" * 64, 7, b"proto-a")
    journal.record("b" * 64, 8, b"proto-b")
    journal.forget("a" * 64)
    (tmp_path / "pending" / ".cut-short.123").write_bytes(b"x")  # a write a power cut interrupted
    (tmp_path / "pending" / "c").write_bytes(b"\x00")  # too short to hold a run id
    left = PendingJournal(tmp_path / "pending").leftovers()
    assert [(x.message_id, x.run_id, x.message) for x in left] == [("b" * 64, 8, b"proto-b")]
    assert sorted(p.name for p in (tmp_path / "pending").iterdir()) == ["b" * 64]


def test_a_journal_that_cannot_write_never_stops_a_message(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    journal = PendingJournal(blocker / "pending")
    journal.record("a" * 64, 1, b"p")
    journal.forget("a" * 64)
    assert journal.broken and journal.leftovers() == []


def test_the_run_book_journals_pending_messages_and_keeps_the_latest_state(tmp_path: Path) -> None:
    book = RunBook(journal=PendingJournal(tmp_path / "j"))
    book.delivered("m0", 5, b"p0")  # pulled; the node is killed before it has fetched the run: still journaled
    assert [x.message_id for x in book.journal.leftovers()] == ["m0"]
    book.not_owed("m0")  # its run had ended
    for message_id, run_id in (("m1", 5), ("m2", 5), ("m3", 6)):
        book.delivered(message_id, run_id, b"p")
        book.received(message_id, run_id, b"p", 10)
    book.answered("m1", 0.1, False)
    book.states[5] = b"state"
    assert {x.message_id for x in book.journal.leftovers()} == {"m2", "m3"}
    assert book.run_ended(5) == 1 and 5 not in book.states
    assert book.rejoined(9) == ["m3"]
    assert book.journal.leftovers() == []


def test_the_node_identity_is_per_superlink_and_key(tmp_path: Path) -> None:
    first = NodeIdentity(tmp_path, "10.0.0.1:9092", b"key-1")
    assert first.load() is None
    first.save(1234)
    assert NodeIdentity(tmp_path, "10.0.0.1:9092", b"key-1").load() == 1234
    assert NodeIdentity(tmp_path, "10.0.0.2:9092", b"key-1").load() is None
    assert NodeIdentity(tmp_path, "10.0.0.1:9092", b"key-2").load() is None
    first.path.write_text("{broken")
    assert first.load() is None


def test_context_state_survives_the_round_trip() -> None:
    state = RecordDict({"probe": ConfigRecord({"count": 3, "rounds": [1, 2, 4]})})
    back = state_from_bytes(state_to_bytes(state))
    assert back.config_records["probe"]["count"] == 3 and back.config_records["probe"]["rounds"] == [1, 2, 4]
    assert state_to_bytes(back) == state_to_bytes(state)  # unchanged state is recognised as unchanged


def test_tls_failures_are_told_apart_from_an_unreachable_superlink() -> None:
    untrusted = classify(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "Pull")
    plain = classify(httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number"), "Pull")
    refused = classify(httpx.ConnectError("[Errno 111] Connection refused"), "Pull")
    assert isinstance(untrusted, SuperLinkTLSError) and "--root-certificates" in str(untrusted)
    assert isinstance(plain, SuperLinkTLSError) and "plain HTTP" in str(plain)
    assert type(refused) is SuperLinkUnreachable
    assert speaks_tls(f"127.0.0.1:{free_port()}") is False  # nothing listens there


def test_a_closed_or_reset_connection_is_worth_a_tls_probe() -> None:
    """A TLS SuperLink closes a plain-text request, or resets it: seen both ways against the same SuperLink."""
    closed = classify(httpx.RemoteProtocolError("Server disconnected without sending a response."), "RegisterNode")
    reset = classify(httpx.ReadError("[Errno 104] Connection reset by peer"), "RegisterNode")
    refused = classify(httpx.ConnectError("[Errno 111] Connection refused"), "RegisterNode")
    assert cut_off(closed) and cut_off(reset)
    assert not cut_off(refused) and not cut_off(SuperLinkTLSError("RegisterNode: Connection reset by peer"))
