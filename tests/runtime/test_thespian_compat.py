"""Every Thespian internal the package reaches is there in the installed Thespian, and a missing one fails loudly."""

from __future__ import annotations

import configparser
import importlib.metadata

import pytest

from flower_actors import ThespianIncompatible
from flower_actors.runtime import thespian_compat
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
