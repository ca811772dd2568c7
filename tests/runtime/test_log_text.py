"""Thespian's debug descriptions are built only when written, and read the same when they are."""

from __future__ import annotations

from thespian.actors import ActorAddress
from thespian.system import transport

from flower_actors import secure_thespian
from flower_actors.runtime import log_text


class Costly:
    """A message whose text counts how often it is made."""

    made = 0

    def __str__(self) -> str:
        Costly.made += 1
        return "costly message"


def test_a_description_is_made_only_when_asked_for_and_once() -> None:
    secure_thespian()
    Costly.made = 0
    intent = transport.TransmitIntent(ActorAddress(None), Costly())
    envelope = transport.ReceiveEnvelope(ActorAddress(None), Costly())
    described = [intent.identify(), envelope.identify()]
    assert Costly.made == 0
    assert "costly message" in str(described[0]) and "costly message" in str(described[1])
    assert Costly.made == 2
    assert str(described[0]) == str(described[0]) and Costly.made == 2, "made once, then kept"


def test_str_of_intents_and_envelopes_is_still_a_string() -> None:
    log_text.defer_descriptions()
    log_text.defer_descriptions()  # a second time changes nothing
    envelope = transport.ReceiveEnvelope(ActorAddress(None), "hello")
    assert str(envelope) == "ReceiveEnvelope(from: ActorAddr-None, <class 'str'> msg: hello)"
    assert str(transport.TransmitIntent(ActorAddress(None), "hello")).startswith("************* TransportIntent(")
