"""Turn espeak's word-start events into a start and an end for each of our words.

espeak reports where a word *starts* (a character index into the text it spoke and a sample
index) and nothing about where it ends. Its idea of a word is not ours: "1,250" yields one
event per number word, "of the" may yield a single event, and an event can land inside the
pause before a word. So we (1) give each of our word spans the earliest event that falls in it,
(2) share the time between two known starts among the words in between that got no event,
in proportion to their length in characters, (3) let each word run to the next word's start,
and (4) shrink every span to the part that carries sound, so the pause after a comma or a
sentence belongs to no word. Pure functions on arrays; nothing here touches espeak.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

import numpy as np

from pipeline.tts.espeak import WordEvent


def starts_from_events(
    spans: Sequence[tuple[int, int]], events: Sequence[WordEvent], total_samples: int
) -> list[int]:
    """The first sample of each character span ``(start, end)`` (sorted, not overlapping),
    non-decreasing and within ``0..total_samples``."""
    if not spans:
        return []
    span_starts = [start for start, _ in spans]
    known: dict[int, int] = {}
    for event in events:
        k = max(bisect.bisect_right(span_starts, event.char_index) - 1, 0)
        if event.char_index >= spans[k][1] and k + 1 < len(spans):
            k += 1  # the event points between two spans: it starts the next one
        sample = min(max(event.sample, 0), total_samples)
        known[k] = min(sample, known.get(k, sample))
    # Anchors: spans with an event, plus the ends of the audio as fallbacks.
    anchors = sorted(known)
    starts = [0] * len(spans)
    bounds = [(k, known[k]) for k in anchors]
    if not bounds or bounds[0][0] != 0:
        bounds.insert(0, (0, 0))
    bounds.append((len(spans), total_samples))
    for (first, begin), (stop, finish) in itertools.pairwise(bounds):
        weights = [max(spans[k][1] - spans[k][0], 1) for k in range(first, stop)]
        total = sum(weights)
        finish = max(finish, begin)
        done = 0
        for offset, weight in enumerate(weights):
            starts[first + offset] = begin + (finish - begin) * done // total
            done += weight
    # Events arrive in order, but guard against a stray one so starts never go backwards.
    return [int(s) for s in np.maximum.accumulate(np.asarray(starts, dtype=np.int64))]


def voiced_range(
    samples: np.ndarray, start: int, end: int, *, frame: int, threshold: float
) -> tuple[int, int]:
    """The part of ``samples[start:end]`` from its first to its last frame whose RMS reaches
    ``threshold`` (frames of ``frame`` samples counted from ``start``); ``(start, start)`` when
    nothing there is louder than that."""
    if end <= start:
        return start, start
    piece = samples[start:end].astype(np.float64)
    count = -(-len(piece) // frame)
    padded = np.zeros(count * frame)
    padded[: len(piece)] = piece
    frames = padded.reshape(count, frame)
    # The last frame is usually partial: average over its real length, not the padding.
    lengths = np.full(count, frame, dtype=np.float64)
    lengths[-1] = len(piece) - (count - 1) * frame
    rms = np.sqrt((frames**2).sum(axis=1) / lengths)
    loud = np.flatnonzero(rms >= threshold)
    if len(loud) == 0:
        return start, start
    return start + int(loud[0]) * frame, min(start + (int(loud[-1]) + 1) * frame, end)


def word_ranges(
    samples: np.ndarray,
    spans: Sequence[tuple[int, int]],
    events: Sequence[WordEvent],
    *,
    frame: int,
    threshold: float,
) -> list[tuple[int, int]]:
    """``(first, last)`` sample of each span's speech in ``samples``: ordered, not overlapping,
    inside the audio; a span without audible sound gets an empty range at its start."""
    starts = starts_from_events(spans, events, len(samples))
    ends = [*starts[1:], len(samples)]
    return [
        voiced_range(samples, s, e, frame=frame, threshold=threshold)
        for s, e in zip(starts, ends, strict=True)
    ]
