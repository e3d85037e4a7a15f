from __future__ import annotations

import io

from harness.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_during_the_first_second() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(out, clock=clock)
    clock.now += 0.5
    progress(1, 4, "a")
    assert out.getvalue() == ""


def test_plain_lines_when_not_a_terminal() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(out, clock=clock, line_every_s=5)
    clock.now += 1.5
    progress(1, 4, "a")  # less than 5 s since start: no line yet
    clock.now += 5
    progress(2, 4, "b")
    progress(4, 4, "d")  # the last step always prints
    assert out.getvalue() == "progress: 2/4 b (6 s)\nprogress: 4/4 d (6 s)\n"


def test_bar_on_a_terminal_and_cleared_on_close() -> None:
    clock, out = FakeClock(), Tty()
    progress = Progress(out, clock=clock, width=10)
    clock.now += 2
    progress(1, 2, "x")
    assert out.getvalue() == "\r[#####-----] 1/2 x (2 s)\x1b[K"
    progress.close()
    assert out.getvalue().endswith("\r\x1b[K")
