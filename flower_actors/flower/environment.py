"""The environment every flwr process gets: no telemetry, no update check, no proxies.

Flower calls home by default (telemetry, an update check) and httpx honours
``*_proxy`` variables. ``quiet_environment`` is applied in this process
before flwr is imported and to the environment of every flwr program this
package starts (the tests' SuperLinks, ``flwr run``, the benchmark's nodes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

__all__ = ["QUIET", "quiet_env", "quiet_environment"]

QUIET = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
"""What turns Flower's calls home off."""


def quiet_environment(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set ``QUIET`` in ``env`` (default ``os.environ``) and drop every proxy variable; return ``env``."""
    target: MutableMapping[str, str] = os.environ if env is None else env
    for name in [n for n in target if n.lower().endswith("_proxy")]:
        del target[name]
    target.update(QUIET)
    return target


def quiet_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) made quiet, with ``extra`` set: for ``subprocess``."""
    env = dict(os.environ if base is None else base)
    quiet_environment(env)
    env.update(extra)
    return env
