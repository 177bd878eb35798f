"""Progress for a run: a bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from pipeline.synthesis import SynthesisProgress


class ProgressPrinter:
    def __init__(self, *, stream: TextIO | None = None, label: str = "synthesis", every_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.label = label
        self.every_s = every_s
        self.started = time.monotonic()
        self.last = 0.0
        self.closed = False

    def __call__(self, p: SynthesisProgress) -> None:
        now = time.monotonic()
        finished = p.done >= p.total
        if not finished and now - self.last < (0.1 if self.tty else self.every_s):
            return
        self.last = now
        line = self.format(p, now - self.started)
        if self.tty:
            self.stream.write("\r" + line.ljust(100)[:100])
            if finished:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    @staticmethod
    def format(p: SynthesisProgress, elapsed: float) -> str:
        # Cached chunks cost nothing, so the rate and the ETA count only chunks really synthesized.
        fresh_done = p.done - p.from_cache
        remaining = p.total - p.done
        rate = fresh_done / elapsed if elapsed > 0 else 0.0
        eta = f"{remaining / rate:,.0f}s" if rate > 0 and remaining else ("0s" if not remaining else "?")
        width = 24
        filled = int(width * p.done / p.total) if p.total else width
        bar = "#" * filled + "-" * (width - filled)
        failed = f" failed {p.failed}" if p.failed else ""
        return f"[{bar}] {p.done}/{p.total} chunks ({p.from_cache} cached){failed} {rate:.1f}/s ETA {eta}"
