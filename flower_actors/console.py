"""What the programs print on a terminal: a progress line and tables that fit its width.

On a terminal the progress line redraws in place and never grows wider
than the terminal (a wrapped line would be left behind on every redraw);
piped, it becomes a plain line every few seconds. With the ``pretty``
extra (``rich``), the progress bar and the tables are drawn by rich;
without it, by the plain code here, which keeps to the same widths.
"""

from __future__ import annotations

import io
import logging
import shutil
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TextIO

__all__ = ["PIPED_EVERY_S", "ROOM", "Progress", "format_table", "have_rich", "print_table", "width_of"]

PIPED_EVERY_S = 5.0
"""Seconds between the progress lines written to a pipe or file."""


ROOM = 2
"""Columns the progress line leaves free: the ``^C`` a terminal echoes must not wrap it onto a new line."""


def have_rich() -> bool:
    """Whether the ``pretty`` extra (rich) can be imported."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def width_of(stream: TextIO, cap: int | None = None) -> int:
    """The columns ``stream`` has: the terminal's real width, or 80 when it is no terminal; at most ``cap``."""
    columns = shutil.get_terminal_size((80, 24)).columns if _isatty(stream) else 80
    columns = max(20, columns)
    return min(columns, cap) if cap else columns


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """A progress line of ``done/total``: redrawn in place on a terminal, plain lines when piped.

    Use it as a context manager, or call ``close`` once: on a terminal that
    draws the final state and ends the line, so the next output starts on a
    line of its own. While it is drawn, the records of this process's
    loggers that go to the same terminal are written above the line, not
    into it.
    """

    def __init__(self, total: int, what: str = "results", stream: TextIO | None = None, live: bool = False) -> None:
        self.total = total
        self.what = what
        self.stream = stream if stream is not None else sys.stderr
        self.tty = _isatty(self.stream)
        self.start = time.monotonic()
        self._last = float("-inf")
        self._state = (0, "")
        self._closed = False
        self._rich: Any = None
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._lock = threading.RLock()  # the ticker, log records and the caller all draw
        if self.tty and have_rich():
            self._rich = _RichBar(total, what, self.stream)
        if self.tty:
            self._route_logs_above()
            if live and self._rich is None:  # rich redraws its elapsed time itself
                threading.Thread(target=self._tick, name="progress", daemon=True).start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def update(self, done: int, note: str = "", force: bool = False) -> None:
        """Report ``done`` of ``total`` (and a short ``note``); draws at most 10 times a second (piped: every 5 s)."""
        self._state = (done, note)
        now = time.monotonic()
        if not force and now - self._last < (0.1 if self.tty else PIPED_EVERY_S):
            return
        self._last = now
        if self._rich is not None:
            self._rich.update(done, note)
            return
        with self._lock:
            if self.tty:
                self.stream.write("\r" + self._fitted() + "\x1b[K")
            else:
                self.stream.write(self.line(done, note, now - self.start) + "\n")
            self.stream.flush()

    def print(self, text: str) -> None:
        """Write a line of text above the progress line (piped: as a line of its own)."""
        with self._lock:
            if self._rich is not None:
                self._rich.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
            elif self.tty and not self._closed:
                self.stream.write("\r\x1b[K" + text + "\n" + self._fitted() + "\x1b[K")
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def _tick(self) -> None:
        while not self._closed:
            time.sleep(0.5)
            with self._lock:
                if not self._closed:
                    self.update(*self._state, force=True)

    def _fitted(self) -> str:
        line = self.line(*self._state, time.monotonic() - self.start)
        return textwrap.shorten(line, width_of(self.stream) - ROOM, placeholder="…")

    def _route_logs_above(self) -> None:
        fd = self.stream.fileno()
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and _same_file(handler.stream, fd):
                self._handlers.append((handler, handler.setStream(_Above(self, handler.stream))))

    def line(self, done: int, note: str, elapsed: float) -> str:
        """The plain progress line: a bar when there is room for one, then the counts."""
        counts = f"{done}/{self.total} {self.what}" + (f", {note}" if note else "") + f", {elapsed:.1f} s"
        room = width_of(self.stream) - ROOM - len(counts) - 3
        if not self.tty or room < 10:
            return counts
        bar = min(30, room)
        filled = int(bar * done / max(1, self.total))
        return f"[{'#' * filled}{'-' * (bar - filled)}] {counts}"

    def close(self) -> None:
        """Draw the final state and end the line (once)."""
        with self._lock:
            if self._closed:
                return
            self.update(*self._state, force=True)
            self._closed = True
            for handler, stream in self._handlers:
                handler.setStream(stream)
            if self._rich is not None:
                self._rich.close()
            elif self.tty:
                self.stream.write("\n")
                self.stream.flush()


def _same_file(stream: Any, fd: int) -> bool:
    try:
        return bool(stream.fileno() == fd)
    except (AttributeError, ValueError, OSError):
        return False


class _Above(io.TextIOBase):
    """A stream for log handlers: each whole line is printed above the progress line."""

    def __init__(self, progress: Progress, stream: TextIO) -> None:
        self.progress = progress
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        if "\n" in self.pending:
            lines, _, self.pending = self.pending.rpartition("\n")
            self.progress.print(lines)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class _RichBar:
    """The same progress line drawn by rich."""

    def __init__(self, total: int, what: str, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            BarColumn(bar_width=None),
            MofNCompleteColumn(),
            TextColumn("{task.fields[label]}", markup=False),
            TimeElapsedColumn(),
            console=Console(file=stream, width=width_of(stream) - ROOM),
            redirect_stdout=False,  # the program's own prints and logs are not ours to re-route
            redirect_stderr=False,
            expand=False,
        )
        self.what = what
        self.task = self.progress.add_task("", total=total, label=what)
        self.progress.start()
        self.progress.console.show_cursor(True)  # a second Ctrl-C ends the program at once: never leave it hidden

    def update(self, done: int, note: str) -> None:
        self.progress.update(self.task, completed=done, label=self.what + (f", {note}" if note else ""))

    def close(self) -> None:
        self.progress.stop()


def format_table(rows: Sequence[tuple[str, str]], width: int = 80, indent: int = 2) -> str:
    """Plain ``name  value`` rows aligned in two columns, each value wrapped to fit ``width`` columns."""
    names = max((len(name) for name, _ in rows), default=0)
    lead = " " * indent
    room = max(20, width - indent - names - 2)
    lines = []
    for name, value in rows:
        wrapped = textwrap.wrap(value, room) or [""]
        lines.append(f"{lead}{name.ljust(names)}  {wrapped[0]}")
        lines.extend(f"{lead}{' ' * names}  {more}" for more in wrapped[1:])
    return "\n".join(lines)


def print_table(title: str, rows: Sequence[tuple[str, str]], stream: TextIO | None = None) -> None:
    """Print a titled two-column table that fits ``stream``'s width (drawn by rich on a terminal, if installed)."""
    out = stream if stream is not None else sys.stdout
    if _isatty(out) and have_rich():
        from rich import box
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left", box=box.SIMPLE, show_header=False, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for name, value in rows:
            table.add_row(name, value)
        Console(file=out).print(table)
        return
    print(title, file=out)
    print(format_table(rows, width_of(out)), file=out)
