"""The Spawner's rehearsal of the task path runs it whole and leaves nothing behind."""

from __future__ import annotations

import dis
import logging
import os
import tempfile

import pytest

from flower_actors.node import rehearsal, task_board
from flower_actors.node.workload_client import WorkloadClient
from flower_actors.runtime.logs import name_process, process_name


def _specialized(function: object) -> set[str]:
    """The instructions of ``function`` that CPython 3.11 has rewritten into their adaptive or specialized forms."""
    code = function.__code__  # type: ignore[attr-defined]
    generic = {i.opname for i in dis.get_instructions(code)}
    return {i.opname for i in dis.get_instructions(code, adaptive=True)} - generic


def test_it_runs_the_whole_path_and_leaves_no_file_no_name_no_board(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = object()
    monkeypatch.setattr(task_board, "CURRENT", marker)
    name_process("Spawner")
    before = set(os.listdir(tempfile.gettempdir()))
    with caplog.at_level(logging.DEBUG, logger=rehearsal.__name__):
        rehearsal.rehearse()
    assert not caplog.records  # it logs only when the path failed somewhere
    assert task_board.CURRENT is marker  # the LeadClient's board was never written
    assert process_name() == "Spawner"
    assert {n for n in os.listdir(tempfile.gettempdir()) if "rehearsal" in n} <= before
    assert _specialized(WorkloadClient._run_task)  # the bytecode a child runs is specialized already


def test_a_failure_inside_is_swallowed(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: object, task: object, start: object) -> object:
        raise RuntimeError("no")

    monkeypatch.setattr(rehearsal._Rehearsal, "_answer", broken)
    with caplog.at_level(logging.DEBUG, logger=rehearsal.__name__):
        rehearsal.rehearse()
    assert "rehearsing the task path failed" in caplog.text
