"""The progress display: what a line says, and how it behaves on a terminal and in a log."""

from __future__ import annotations

import io
import re

from hypothesis import given
from hypothesis import strategies as st

from pipeline.progress import BAR_WIDTH, LINE_WIDTH, ProgressPrinter
from pipeline.synthesis import SynthesisProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_and_eta_count_only_synthesized_chunks() -> None:
    # 40 chunks came from the cache at once; 10 were synthesized in 20 s: 0.5/s, 50 to go.
    line = ProgressPrinter.format(SynthesisProgress(total=100, done=50, from_cache=40), 20.0)
    assert "50/100 chunks (40 cached)" in line
    assert "0.5/s" in line
    assert line.endswith("ETA 1m40s")
    assert line.startswith("[" + "#" * (BAR_WIDTH // 2) + "-" * (BAR_WIDTH // 2) + "]")


def test_eta_units_unknown_and_finished() -> None:
    assert ProgressPrinter.format(SynthesisProgress(total=10, done=0), 0.0).endswith("0.0/s ETA ?")
    assert ProgressPrinter.format(SynthesisProgress(total=10, done=5, from_cache=5), 3.0).endswith("ETA ?")
    assert ProgressPrinter.format(SynthesisProgress(total=10000, done=1), 4.0).endswith("ETA 11h06m")
    done = ProgressPrinter.format(SynthesisProgress(total=10, done=10, from_cache=10), 0.0)
    assert done.endswith("ETA 0s") and "#" * BAR_WIDTH in done


def test_failures_are_shown() -> None:
    line = ProgressPrinter.format(SynthesisProgress(total=10, done=4, failed=2), 2.0)
    assert "(0 cached, 2 failed)" in line


@given(st.integers(0, 5000), st.data(), st.floats(0, 1e6))
def test_format_is_well_formed_for_any_state(total: int, data: st.DataObject, elapsed: float) -> None:
    done = data.draw(st.integers(0, total))
    from_cache = data.draw(st.integers(0, done))
    failed = data.draw(st.integers(0, done - from_cache))
    line = ProgressPrinter.format(SynthesisProgress(total, done, from_cache, failed), elapsed)
    bar = re.match(r"\[([#-]+)\]", line)
    assert bar is not None and len(bar.group(1)) == BAR_WIDTH
    assert f" {done}/{total} chunks ({from_cache} cached" in line
    assert re.search(r"ETA (\?|\d+s|\d+m\d\ds|\d+h\d\dm)$", line)


def test_terminal_redraws_one_line_in_place() -> None:
    out, clock = Terminal(), Clock()
    printer = ProgressPrinter(stream=out, clock=clock)
    p = SynthesisProgress(total=3)
    printer(p)
    for _ in range(3):
        clock.now += 1
        p.done += 1
        printer(p)
    text = out.getvalue()
    assert text.count("\r") == 4 and text.count("\n") == 1 and text.endswith("\n")
    frames = text.strip("\n").split("\r")[1:]
    assert all(len(f) == LINE_WIDTH for f in frames)  # padded, so a shorter line erases a longer
    assert "3/3 chunks" in frames[-1]


def test_log_gets_plain_lines_and_not_too_many() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(stream=out, clock=clock)
    assert not printer.tty and printer.every_s == 5.0
    p = SynthesisProgress(total=100)
    printer(p)
    for _ in range(99):  # one chunk a second for 99 s
        clock.now += 1
        p.done += 1
        printer(p)
    p.done += 1
    printer(p)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert 20 <= len(lines) <= 22  # every 5 s, plus the first and the last
    assert lines[0].startswith("[") and "100/100 chunks" in lines[-1]


def test_terminal_throttles_redraws() -> None:
    out, clock = Terminal(), Clock()
    printer = ProgressPrinter(stream=out, clock=clock)
    p = SynthesisProgress(total=1000)
    for _ in range(500):  # 500 chunks in 5 ms: a cached burst must not flood the terminal
        clock.now += 0.00001
        p.done += 1
        printer(p)
    assert out.getvalue().count("\r") == 1
