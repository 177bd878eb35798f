"""Evenly spread excerpts of a long file, for estimates that need not read all of it.

How much level the limiter takes off, or how a codec changes level and peaks, is a property of
the material, not of its length: a couple of minutes spread over a ten-hour book estimate it as
well as the whole book, at a fixed cost. Short files are used whole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.audio.loudness import LevelMeter, LoudnessMeter, Measurement
from pipeline.audio.render_pass import BLOCK_FRAMES, Chain, Processor, source_blocks


def excerpt_spans(
    frames: int, rate: int, *, whole_up_to_s: float, count: int, length_s: float, warmup_s: float
) -> list[tuple[int, int, int]]:
    """(start, warm-up frames, measured frames) for each excerpt; the warm-up (skipped when
    measuring) lets the limiter's memory settle as it would have in the full pass."""
    if frames <= whole_up_to_s * rate:
        return [(0, 0, frames)]
    length, warmup = int(length_s * rate), int(warmup_s * rate)
    stride = (frames - length - warmup) // (count - 1)
    return [(i * stride, warmup, length) for i in range(count)]


def read_span(src: Path, start: int, frames: int) -> np.ndarray:
    _, blocks = source_blocks(src, start=start, frames=frames)
    parts = list(blocks)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


class LevelProbe:
    """The level (integrated LUFS or RMS) a chain's output would have, from excerpts of the
    source held in memory (at most a couple of minutes, whatever the file's length)."""

    def __init__(self, src: Path, source: Measurement, *, weighted: bool) -> None:
        self._rate = source.sample_rate
        self._weighted = weighted
        spans = excerpt_spans(source.frames, self._rate, whole_up_to_s=90.0, count=10, length_s=6.0, warmup_s=1.0)
        self._excerpts = [(warmup, read_span(src, start, warmup + length)) for start, warmup, length in spans]

    def level(self, chain: Chain) -> float:
        meter: LoudnessMeter | LevelMeter = LoudnessMeter(self._rate) if self._weighted else LevelMeter(self._rate)
        for warmup, audio in self._excerpts:
            processor = Processor(chain, self._rate)
            parts = [processor.process(audio[i : i + BLOCK_FRAMES]) for i in range(0, len(audio), BLOCK_FRAMES)]
            parts.append(processor.flush())
            meter.add(np.concatenate(parts)[warmup:])
        return meter.integrated_lufs() if isinstance(meter, LoudnessMeter) else meter.rms_db
