"""Run a program on a real pseudo-terminal of a given size, type Ctrl-C into it, and read the screen it leaves."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from types import TracebackType

import pyte

from tests.proctools import REPO


class Terminal:
    """``python ARGS`` as the foreground job of an ``columns``-wide terminal: what a person sees.

    The program's stdin, stdout and stderr are the terminal, which is its
    controlling terminal, so ``ctrl_c`` does what the key does: SIGINT to
    the terminal's foreground process group.
    """

    def __init__(self, args: list[str], env: dict[str, str], columns: int = 80, rows: int = 24) -> None:
        self.columns = columns
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
        env["TERM"] = "xterm-256color"
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.master = master
        self.raw = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the terminal has closed it
                return
            if not chunk:
                return
            self.raw.extend(chunk)

    def text(self) -> str:
        """Everything written so far, escapes and all."""
        return self.raw.decode(errors="replace")

    def wait_for(self, needle: str, timeout: float) -> bool:
        """Wait until ``needle`` was written (True), or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if time.monotonic() > deadline or (self.proc.poll() is not None and not self._reader.is_alive()):
                return needle in self.text()
            time.sleep(0.05)
        return True

    def ctrl_c(self) -> None:
        """Type Ctrl-C."""
        os.write(self.master, b"\x03")

    def wait(self, timeout: float) -> int:
        """The program's exit code, once it and every process holding the terminal are done."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def screen(self, rows: int = 500) -> list[str]:
        """The lines the terminal shows at the end (a tall screen: nothing scrolls away), right-stripped."""
        screen = pyte.Screen(self.columns, rows)
        stream = pyte.Stream(screen)
        stream.feed(self.text())  # the terminal's line discipline already turned each \n into \r\n
        lines = [line.rstrip() for line in screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def close(self) -> None:
        """Kill the program's session if it still runs, and close the terminal."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        os.close(self.master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _take_terminal() -> None:
    """In the child, after ``setsid``: make stdin (the pty) its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
