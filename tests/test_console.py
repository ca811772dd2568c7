"""What a person sees: the demo on a real 80-column terminal (with rich and without), Ctrl-C'd, and piped."""

from __future__ import annotations

import io
import re
import time

import pytest

from flower_actors.tools import Progress, print_table, width_of
from tests.proctools import assert_none_left, marked_env
from tests.terminal import Terminal

TINY = ["--clients", "5", "--tasks", "20", "--work", "0.2", "--gap", "0.05"]
WITHOUT_RICH = ["-c", "import runpy, sys; sys.modules['rich'] = None; sys.argv[0] = 'demo'; "
                "runpy.run_module('flower_actors.demo', run_name='__main__')"]  # fmt: skip
DEMO = {"rich": ["-m", "flower_actors.demo"], "plain": WITHOUT_RICH}


def test_a_table_wraps_its_values_within_the_width() -> None:
    out = io.StringIO()
    print_table("title", [("name", "word " * 40), ("longer name", "short")], stream=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "title" and all(len(line) <= 80 for line in lines) and len(lines) > 3
    assert lines[-1].split() == ["longer", "name", "short"]


def test_piped_progress_is_plain_lines_without_escapes() -> None:
    out = io.StringIO()
    with Progress(10, stream=out) as progress:
        progress.update(3, "a note")
        progress.update(4)  # within 5 s of the last line: not written
        progress.print("a line of its own")
    text = out.getvalue()
    assert text.splitlines() == ["3/10 results, a note, 0.0 s", "a line of its own", "4/10 results, 0.0 s"]
    assert "\r" not in text and "\x1b" not in text and width_of(out) == 80


@pytest.mark.parametrize(("drawer", "columns"), [("rich", 80), ("plain", 80), ("rich", 50)])
def test_the_demo_on_a_terminal_leaves_one_progress_line_and_a_table_that_fit(drawer: str, columns: int) -> None:
    env = marked_env()
    with Terminal([*DEMO[drawer], *TINY], env, columns=columns) as terminal:
        assert terminal.wait(timeout=120) == 0, terminal.text()
        screen = terminal.screen()
    progress = [line for line in screen if re.search(r"\d+/20 results", line)]
    assert len(progress) == 1 and "20/20 results" in progress[0], screen  # redrawn in place, no stale copies
    assert len(progress[0]) <= columns - 2, "room is left for an echoed ^C"
    assert "FED example trace on flower_actors" in screen and any("makespan" in line for line in screen), screen
    assert all(len(line) <= columns for line in screen)
    assert (drawer == "rich") == ("━" in progress[0] or "\x1b[2K" in terminal.text())
    assert_none_left(env)


@pytest.mark.parametrize("presses", [1, 2], ids=["once", "twice"])
def test_ctrl_c_on_a_terminal_says_what_it_waits_for_above_the_progress_line(presses: int) -> None:
    env = marked_env()
    args = ["-m", "flower_actors.demo", "--work", "30", "--gap", "0.01", "--long-poll", "--clients", "20"]
    with Terminal([*args, "--tasks", "40"], env) as terminal:
        assert terminal.wait_for("40 submitted", timeout=60), terminal.text()
        time.sleep(1.0)
        terminal.ctrl_c()
        assert terminal.wait_for("Ctrl-C again to stop now", timeout=10), terminal.text()
        start = time.monotonic()
        if presses == 2:
            terminal.ctrl_c()
        code = terminal.wait(timeout=60)
        took = time.monotonic() - start
        screen = terminal.screen()
    assert code == 130, terminal.text()
    text = "".join(screen).replace(" ", "")  # a log line longer than the terminal wraps onto the next one
    assert "stopping:waitingupto5sfor40runningtask(s);Ctrl-Cagain" in text, screen
    assert not any("stopping" in line and "results" in line for line in screen), "a log line inside the bar"
    assert sum("/40 results" in line for line in screen) <= 2, screen  # before and after the message, no more
    if presses == 2:
        assert "stoppingnow:killing" in text and took < 4.0, (took, screen)
    else:
        assert "interrupted;everyprocessofthedemowasstopped" in text, screen
    assert_none_left(env)
