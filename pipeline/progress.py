"""Progress for a run: a bar redrawn in place on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from pipeline.synthesis import SynthesisProgress

BAR_WIDTH = 24
LINE_WIDTH = 100
TTY_EVERY_S = 0.1  # redraw rate of the bar
LOG_EVERY_S = 5.0  # one line this often in a log file, so a long book does not flood it


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class ProgressPrinter:
    """A ``synthesize_all`` progress callback. The clock starts at the first call, which
    comes after the cache has been consulted, so the rate is that of real synthesis."""

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):  # a closed or minimal stream: treat as a log
            self.tty = False
        self.every_s = every_s if every_s is not None else (TTY_EVERY_S if self.tty else LOG_EVERY_S)
        self.clock = clock
        self.started: float | None = None
        self.last: float | None = None

    def __call__(self, p: SynthesisProgress) -> None:
        now = self.clock()
        if self.started is None:
            self.started = now
        finished = p.done >= p.total
        if not finished and self.last is not None and now - self.last < self.every_s:
            return
        self.last = now
        line = self.format(p, now - self.started)
        if self.tty:
            self.stream.write("\r" + line.ljust(LINE_WIDTH)[:LINE_WIDTH] + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    @staticmethod
    def format(p: SynthesisProgress, elapsed: float) -> str:
        """One status line. Cached chunks cost no time, so the rate and the ETA count only the
        chunks really sent to the engine (the cache is consulted before synthesis starts, so
        every chunk still to do is one to synthesize)."""
        sent = p.done - p.from_cache
        remaining = p.total - p.done
        rate = sent / elapsed if elapsed > 0 else 0.0
        if not remaining:
            eta = "0s"
        elif rate > 0:
            eta = _duration(remaining / rate)
        else:
            eta = "?"
        filled = BAR_WIDTH * p.done // p.total if p.total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        failed = f", {p.failed} failed" if p.failed else ""
        return f"[{bar}] {p.done}/{p.total} chunks ({p.from_cache} cached{failed}) {rate:.1f}/s ETA {eta}"
