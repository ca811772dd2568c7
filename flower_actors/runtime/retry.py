"""Retrying: ``Backoff`` for requests that fail, ``RestartIntensity`` for processes that keep dying.

``Backoff`` is exponential with jitter, so nodes that failed together do
not retry together; every retrying actor uses it.

``RestartIntensity`` is a supervisor's restart intensity (Erlang/OTP's ``intensity`` and
``period``): at most ``max_restarts`` deaths within ``period`` seconds, each
restart after an exponential back-off; one death more and the caller gives
up. A death that made progress (for a WorkloadClient: it finished or was
running a task) clears the count, so only deaths that get nothing done can
turn into a loop of forks.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

__all__ = ["Backoff", "RestartIntensity"]


@dataclass
class Backoff:
    """Delays after consecutive failures: ``base`` doubled per failure up to ``max_delay``, times a jitter."""

    base: float = 0.1
    """Delay after the first failure (before jitter)."""
    max_delay: float = 5.0
    """Longest delay."""
    failures: int = 0
    """Consecutive failures so far."""

    def failed(self) -> float:
        """Record a failure; seconds to wait before the next try (between half and all of the nominal delay)."""
        self.failures += 1
        delay = min(self.max_delay, self.base * 2 ** min(self.failures - 1, 30))
        return delay * random.uniform(0.5, 1.0)

    def worth_logging(self) -> bool:
        """Whether this failure deserves a log line (the 1st, the 10th, then every 100th)."""
        return self.failures in (1, 10) or self.failures % 100 == 0

    def reset(self) -> None:
        """A success: the next failure starts from ``base`` again."""
        self.failures = 0


@dataclass
class RestartIntensity:
    """Counts recent deaths without progress and says when to start again, or to give up."""

    max_restarts: int = 3
    """Restarts allowed within ``period``; the death after them gives up."""
    period: float = 30.0
    """Seconds a death is remembered."""
    base_delay: float = 0.1
    """Delay before the first restart; doubled for each further one."""
    max_delay: float = 2.0
    """Longest delay before a restart."""
    deaths: deque[float] = field(default_factory=deque)
    """When the remembered deaths happened (monotonic seconds)."""

    def died(self, now: float) -> float | None:
        """Record a death at ``now``: seconds to wait before the next start, or ``None`` to give up.

        Giving up forgets the deaths, so a later start is tried afresh.
        """
        self._forget_before(now - self.period)
        self.deaths.append(now)
        if len(self.deaths) > self.max_restarts:
            self.deaths.clear()
            return None
        return min(self.max_delay, self.base_delay * 2 ** (len(self.deaths) - 1))

    def progressed(self) -> None:
        """It got something done: earlier deaths no longer count."""
        self.deaths.clear()

    @property
    def recent(self) -> int:
        """Deaths remembered now."""
        return len(self.deaths)

    def _forget_before(self, cutoff: float) -> None:
        while self.deaths and self.deaths[0] < cutoff:
            self.deaths.popleft()
