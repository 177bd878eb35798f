"""Word timings for audio that came without any (the WebSocket returns none).

PocketSphinx forced alignment of the received audio against the words sent
(:mod:`pipeline.align.sphinx`); where that is not installed or loses the path, the voiced span
of the audio (leading and trailing silence left out) is shared out by letter count, as the HTTP
client does for ``/text_to_speech``. Each call says which of the two it used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.align import sphinx
from pipeline.models import WordTiming
from pipeline.tts.wordmap import estimate_timings

ALIGNED = "forced_alignment"  # PocketSphinx
ESTIMATED = "estimated"
# Quieter than this (dBFS, 10 ms frames) is silence at the edges of a group's audio.
_SILENCE_DBFS = -45.0
_FRAME_MS = 10


def timings_source() -> str:
    """What a run's timings come from when alignment succeeds: part of the cache identity."""
    return ALIGNED if sphinx.available() else ESTIMATED


def voiced_span_ms(samples: np.ndarray, rate: int) -> tuple[int, int]:
    """[start, end) in ms of the audio between its leading and trailing silence."""
    step = max(1, rate * _FRAME_MS // 1000)
    frames = len(samples) // step
    if frames == 0:
        return 0, round(len(samples) * 1000 / rate)
    x = samples[: frames * step].astype(np.float64).reshape(frames, step) / 32768.0
    level = 10 * np.log10(np.mean(x * x, axis=1) + 1e-12)
    loud = np.flatnonzero(level > _SILENCE_DBFS)
    if len(loud) == 0:
        return 0, round(len(samples) * 1000 / rate)
    return int(loud[0]) * _FRAME_MS, (int(loud[-1]) + 1) * _FRAME_MS


def _estimated(words: Sequence[str], samples: np.ndarray, rate: int) -> tuple[WordTiming, ...]:
    start, end = voiced_span_ms(samples, rate)
    return tuple(t.with_offset(start) for t in estimate_timings(words, end - start))


def timings_for(words: Sequence[str], samples: np.ndarray, rate: int) -> tuple[tuple[WordTiming, ...], str]:
    """One timing per word (relative to ``samples``), and the source they came from."""
    if not sphinx.available():
        return _estimated(words, samples, rate), ESTIMATED
    spans = sphinx.aligner().align(words, samples, rate)
    if spans is None:
        return _estimated(words, samples, rate), ESTIMATED
    duration = round(len(samples) * 1000 / rate)
    timings: list[WordTiming] = []
    previous_end = 0
    for span in spans:
        if span is None:  # nothing to say (a pause): an empty timing where the last word ended
            timings.append(WordTiming(previous_end, previous_end))
            continue
        start = min(max(span[0], previous_end), duration)
        end = min(max(span[1], start), duration)
        timings.append(WordTiming(start, end))
        previous_end = end
    return tuple(timings), ALIGNED
