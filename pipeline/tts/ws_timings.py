"""Word timings for audio that came without any (the WebSocket returns none).

Until a forced aligner is available, the voiced span of the audio (leading and trailing
silence left out) is shared out by letter count, like the HTTP client does for
``/text_to_speech``; ``timings_source`` names which of the two a run used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.models import WordTiming
from pipeline.tts.wordmap import estimate_timings

# Quieter than this (dBFS, 10 ms frames) is silence at the edges of a group's audio.
_SILENCE_DBFS = -45.0
_FRAME_MS = 10


def timings_source() -> str:
    return "estimated"


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


def timings_for(words: Sequence[str], samples: np.ndarray, rate: int) -> tuple[WordTiming, ...]:
    start, end = voiced_span_ms(samples, rate)
    return tuple(t.with_offset(start) for t in estimate_timings(words, end - start))
