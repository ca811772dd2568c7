"""One log format for every process of the package, and process names a person can read in ``ps``.

Each record carries the name of the process that made it (``LeadClient``,
``WorkloadClient w=3``, ``Sender``, or the program's own name), set once per
process by ``name_process``; Thespian forwards actors' records to its logger
process, and the name travels with them. With the optional ``setproctitle``
package installed (``pip install 'flower_actors[proctitle]'``) the same name
becomes the process title, so ``ps -ef`` shows which process is which.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

__all__ = ["LOG_FORMAT", "LOG_LEVELS", "ActorFormatter", "configure_logging", "name_process", "process_name"]

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(actor)s %(name)s: %(message)s"
"""``2026-12-04 18:40:01,123 INFO    LeadClient flower_actors.node.lead_client: ...``"""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_name = ""
_factory_installed = False


def process_name() -> str:
    """This process's name in log records (its pid until ``name_process`` is called)."""
    return _name or f"pid {os.getpid()}"


def name_process(name: str) -> None:
    """Name this process in every later log record and, with ``setproctitle`` installed, in ``ps``."""
    global _name, _factory_installed
    _name = name
    if not _factory_installed:  # once per process; a forked child inherits the parent's factory and its flag
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if not hasattr(record, "actor"):
                record.actor = process_name()
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(f"{name} [flower_actors]")


class ActorFormatter(logging.Formatter):
    """``LOG_FORMAT``; a record from a process that was never named shows its pid."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None) -> None:
        super().__init__(fmt or LOG_FORMAT, datefmt)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "actor"):
            record.actor = f"pid {record.process}"
        return super().format(record)


def configure_logging(level: str | int, program: str) -> None:
    """A program's logging: ``LOG_FORMAT`` on stderr at ``level``, this process named ``program``."""
    name_process(program)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ActorFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else getattr(logging, level.upper()))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per HTTP request otherwise
