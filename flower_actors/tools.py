"""What the package's own programs (demo, soak, benchmark) use beyond the public API, in one documented place.

The FED trace and its replay, latency figures, process facts, and the
SIGTERM handling of a command-line program. Stable enough for scripts of
your own; not part of the core API.
"""

from __future__ import annotations

from .local import exit_on_sigterm
from .runtime.proc import cpu_ms, memory_kb, pss_kb, read_stat, session_processes
from .runtime.system import SYSTEM_BASE
from .stats import forward_gaps, forward_latencies, percentile, result_latencies, summary
from .trace import Replay, TraceItem, TraceSpec, fed_trace, lower_bound, replay, trace_start

__all__ = [
    "SYSTEM_BASE",
    "Replay",
    "TraceItem",
    "TraceSpec",
    "cpu_ms",
    "exit_on_sigterm",
    "fed_trace",
    "forward_gaps",
    "forward_latencies",
    "lower_bound",
    "memory_kb",
    "percentile",
    "pss_kb",
    "read_stat",
    "replay",
    "result_latencies",
    "session_processes",
    "summary",
    "trace_start",
]
