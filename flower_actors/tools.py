"""What the package's own programs (demo, soak, benchmark) use beyond the public API, in one documented place.

The FED trace and its replay, latency figures, process facts, and the
SIGTERM handling of a command-line program, and its progress line and tables. Stable enough for scripts of
your own; not part of the core API.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from . import __version__
from .console import Progress, print_table, width_of
from .flower.harness import FlwrCli, SuperLinkProcess, SuperNodeProcess
from .local import exit_on_sigterm
from .runtime.logs import LOG_LEVELS, configure_logging
from .runtime.proc import cpu_ms, memory_kb, process_alive, pss_kb, read_stat, session_processes
from .runtime.system import SYSTEM_BASE
from .stats import forward_gaps, forward_latencies, percentile, result_latencies, summary
from .timeline import FORMATS
from .trace import Replay, TraceItem, TraceSpec, fed_trace, lower_bound, replay, trace_start

__all__ = [
    "FORMATS",
    "LOG_LEVELS",
    "SYSTEM_BASE",
    "FlwrCli",
    "Progress",
    "Replay",
    "SuperLinkProcess",
    "SuperNodeProcess",
    "TraceItem",
    "TraceSpec",
    "add_log_level",
    "add_version",
    "at_least",
    "configure_logging",
    "cpu_ms",
    "exit_on_sigterm",
    "fed_trace",
    "forward_gaps",
    "forward_latencies",
    "fraction",
    "lower_bound",
    "memory_kb",
    "non_negative",
    "percentile",
    "positive",
    "print_table",
    "process_alive",
    "pss_kb",
    "read_stat",
    "replay",
    "result_latencies",
    "session_processes",
    "summary",
    "trace_start",
    "width_of",
]


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse ``type``: a number of ``kind`` that must be > 0 (the error names the flag)."""

    def parse(text: str) -> float:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value

    parse.__name__ = "int"
    return parse


def non_negative(text: str) -> float:
    """An argparse ``type``: a number of 0 or more (seconds, say)."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """An argparse ``type``: a rate between 0 and 1."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_log_level(parser: argparse._ActionsContainer, default: str = "WARNING") -> None:
    """Add ``--log-level`` (any of ``LOG_LEVELS``, any case) to a program's parser."""
    parser.add_argument(
        "--log-level",
        default=default,
        type=str.upper,
        choices=LOG_LEVELS,
        help=f"least severe log records shown on stderr (default {default})",
    )


def add_version(parser: argparse.ArgumentParser) -> None:
    """Add ``-V``/``--version`` to a program's parser."""
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s (flower_actors {__version__})")
