"""Progress on long runs: silent for the first second, then a bar on a terminal or a line every
few seconds elsewhere (CI logs). Time is injected so tests can drive it with a fake clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Call with ``(done, total, label)`` after each unit of work; call :meth:`close` at the
    end."""

    def __init__(
        self,
        stream: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        delay_s: float = 1.0,
        line_every_s: float = 5.0,
        width: int = 30,
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.delay_s = delay_s
        self.line_every_s = line_every_s
        self.width = width
        self.start = clock()
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_line = self.start
        self._drawn = False

    def __call__(self, done: int, total: int, label: str) -> None:
        now = self.clock()
        elapsed = now - self.start
        if elapsed < self.delay_s:
            return
        frac = done / total if total else 1.0
        text = f"{done}/{total} {label} ({elapsed:.0f} s)"
        if self.tty:
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r[{bar}] {text}\x1b[K")
            self._drawn = True
        elif now - self._last_line >= self.line_every_s or done == total:
            self.stream.write(f"progress: {text}\n")
            self._last_line = now
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
