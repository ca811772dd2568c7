"""A timeline of results: each task a bar on its workload's lane, pulls marked.

``write_timeline(results, "run.json")`` writes the Chrome trace-event format
(open it in https://ui.perfetto.dev or ``chrome://tracing``; no dependency);
``.png`` and ``.svg`` are drawn with matplotlib (``pip install
'flower_actors[plot]'``). Each bar has three parts, from the timestamps every
``TaskRes`` carries: *waiting* (created → handler start: at the server until
the pull, then in the node), *running* (handler start → finish) and *result
on its way* (finish → stored at the server). Pulls that brought tasks are
ticks on their own lane.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .messages import TaskRes

__all__ = ["Bar", "bars", "write_timeline"]

SEGMENTS = (("waiting", "#c6dbef"), ("running", "#2171b5"), ("result on its way", "#fd8d3c"))
FORMATS = (".json", ".png", ".svg")


@dataclass(frozen=True)
class Bar:
    """One task on its lane, in seconds from the timeline's start."""

    lane: str
    task_id: str
    segments: tuple[tuple[str, float, float], ...]  # (segment name, start, end)
    error: str | None


def bars(results: Iterable[TaskRes]) -> tuple[list[Bar], list[float], float]:
    """The bars of ``results``, the pull times, and the start (epoch seconds) both count from."""
    items = [r for r in results if r.started_at is not None and r.finished_at is not None]
    if not items:
        return [], [], 0.0
    origin = min(r.created_at or r.started_at or 0.0 for r in items)
    out = []
    for r in items:
        start, finish = float(r.started_at or 0.0), float(r.finished_at or 0.0)
        created = float(r.created_at or start)
        stored = float(r.stored_at or r.pushed_at or finish)
        parts = (("waiting", created, start), ("running", start, finish), ("result on its way", finish, stored))
        out.append(
            Bar(
                str(r.workload_id),
                str(r.ins_id),
                tuple((name, a - origin, b - origin) for name, a, b in parts if b > a),
                r.error.kind if r.error else None,
            )
        )
    pulls = sorted({float(r.pulled_at) - origin for r in items if r.pulled_at is not None})
    return out, pulls, origin


def write_timeline(results: Sequence[TaskRes], path: str | Path, title: str = "flower_actors timeline") -> Path:
    """Write the timeline of ``results`` to ``path``; its extension (.json, .png, .svg) picks the format."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"timeline {target}: the extension must be one of {', '.join(FORMATS)}")
    found, pulls, origin = bars(results)
    if suffix == ".json":
        target.write_text(json.dumps(chrome_trace(found, pulls, origin, title)))
    else:
        _draw(found, pulls, target, title)
    return target


def _lanes(found: list[Bar]) -> dict[str, int]:
    def key(lane: str) -> tuple[int, Any]:
        return (0, int(lane)) if lane.lstrip("-").isdigit() else (1, lane)

    return {lane: i for i, lane in enumerate(sorted({b.lane for b in found}, key=key))}


def chrome_trace(found: list[Bar], pulls: list[float], origin: float, title: str) -> dict[str, Any]:
    """The trace-event JSON object: a thread per workload, complete events per segment, instant events per pull."""
    lanes = _lanes(found)
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": title}},
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "pulls"}},
    ]
    for lane, tid in lanes.items():
        events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid + 1, "args": {"name": f"w={lane}"}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid + 1, "args": {"sort_index": tid}})
    for bar in found:
        for name, start, end in bar.segments:
            events.append(
                {
                    "name": name,
                    "cat": "task",
                    "ph": "X",
                    "pid": 1,
                    "tid": lanes[bar.lane] + 1,
                    "ts": round(start * 1e6, 1),
                    "dur": round((end - start) * 1e6, 1),
                    "args": {"task_id": bar.task_id, "error": bar.error},
                }
            )
    for at in pulls:
        events.append(
            {"name": "pull", "cat": "pull", "ph": "i", "s": "t", "pid": 1, "tid": 0, "ts": round(at * 1e6, 1)}
        )
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"origin_epoch_s": origin}}


def _draw(found: list[Bar], pulls: list[float], target: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        raise ConfigError(
            f"drawing {target.name} needs matplotlib: pip install 'flower_actors[plot]' (or write a .json timeline)"
        ) from None
    lanes = _lanes(found)
    height = min(40.0, 1.6 + 0.11 * len(lanes))
    fig, (top, ax) = plt.subplots(
        2, 1, sharex=True, figsize=(11, height), gridspec_kw={"height_ratios": [0.35, max(1.0, height - 1.2)]}
    )
    top.eventplot(pulls, colors="black", linewidths=0.6)
    top.set_yticks([])
    top.set_ylabel("pulls", rotation=0, ha="right", va="center")
    colors = dict(SEGMENTS)
    for name, color in SEGMENTS:
        for bar in found:
            spans = [(s, e - s) for n, s, e in bar.segments if n == name]
            if spans:
                ax.broken_barh(spans, (lanes[bar.lane] + 0.1, 0.8), facecolors=color, edgecolor="none")
    for bar in found:
        if bar.error:
            end = bar.segments[-1][2] if bar.segments else 0.0
            ax.plot([end], [lanes[bar.lane] + 0.5], marker="x", color="#cb181d", markersize=4)
    step = max(1, len(lanes) // 25)
    names = list(lanes)
    ax.set_yticks([i + 0.5 for i in range(0, len(names), step)], [f"w={names[i]}" for i in range(0, len(names), step)])
    ax.set_ylim(len(lanes), 0)
    ax.set_xlabel("seconds from the first task's creation")
    ax.set_ylabel(f"{len(lanes)} workloads")
    ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=colors[name], label=name) for name, _ in SEGMENTS]
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
    top.set_title(f"{title}: {len(found)} tasks on {len(lanes)} lanes")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
