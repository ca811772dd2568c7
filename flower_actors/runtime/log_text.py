"""Thespian's descriptions of messages for its debug log, built only when a debug line is written.

On every send Thespian calls ``TransmitIntent.identify()`` twice, and on
every delivery ``ReceiveEnvelope.identify()`` once, to pass the text to
``thesplog(..., level=DEBUG)``, which drops it unless Thespian's debug log
is on. Each call formats the message, both addresses and three timers: 6-8%
of a busy actor's time (py-spy, the Spawner and a WorkloadClient in the
benchmark bursts). ``defer_descriptions()`` makes ``identify()`` return an
object whose ``str()`` is that same text, so it is built only if the line
is written; ``str(intent)`` and ``str(envelope)`` are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Deferred", "defer_descriptions"]


class Deferred:
    """Text made by ``make()`` when first asked for (``str``), then kept."""

    __slots__ = ("_make", "_text")

    def __init__(self, make: Callable[[], str]) -> None:
        self._make: Callable[[], str] | None = make
        self._text = ""

    def __str__(self) -> str:
        if self._make is not None:
            self._text, self._make = str(self._make()), None
        return self._text

    __repr__ = __str__


def defer_descriptions() -> None:
    """Make Thespian's ``identify()`` of intents and envelopes lazy (idempotent)."""
    from thespian.system import transport

    from .thespian_compat import _require

    _require(transport, "TransmitIntent", "ReceiveEnvelope")
    for cls in (transport.TransmitIntent, transport.ReceiveEnvelope):
        _require(cls, "identify", "__str__")
        identify = cls.identify
        if getattr(identify, "_flower_actors", False):
            continue
        _defer(cls, identify)


def _defer(cls: Any, identify: Callable[[Any], str]) -> None:
    original_str = cls.__str__

    def deferred(self: Any) -> Deferred:
        return Deferred(lambda: identify(self))

    def text(self: Any) -> str:  # Thespian's __str__ may return identify() itself: always a str
        return str(original_str(self))

    deferred._flower_actors = True  # type: ignore[attr-defined]
    cls.identify = deferred
    cls.__str__ = text
