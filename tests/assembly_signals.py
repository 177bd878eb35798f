"""Signals and chunk values shared by the assembly tests.

Synthetic chunks are noise bursts framed by digital silence, so where the "speech" is and how
long each silence lasts is known exactly, independently of the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from pipeline.models import Boundary, Chunk, SynthesizedChunk, Word, WordTiming

SR = 24000


def ms(value: float, sample_rate: int = SR) -> int:
    return round(value * sample_rate / 1000)


def make_item(
    seq: int,
    samples: np.ndarray,
    *,
    sample_rate: int = SR,
    pause_after: Boundary = Boundary.SENTENCE,
    is_heading: bool = False,
    spoken: str = "word",
) -> SynthesizedChunk:
    chunk = Chunk(
        id=f"c0000-{seq:05d}",
        chapter=0,
        seq=seq,
        source="book.txt",
        words=(Word("word", 0, 4, spoken),),
        pause_after=pause_after,
        is_heading=is_heading,
    )
    return SynthesizedChunk(
        chunk=chunk,
        cache_key=chunk.id,
        timings=(WordTiming(0, round(len(samples) * 1000 / sample_rate)),),
        num_samples=len(samples),
        sample_rate=sample_rate,
        from_cache=False,
    )


def noise_burst(
    rng: np.random.Generator, speech: int, lead: int, trail: int, level: float
) -> np.ndarray:
    """``lead`` zeros, ``speech`` samples of noise whose first and last samples are at full
    ``level`` (so the speech edges are exact), then ``trail`` zeros; int16."""
    body = np.clip(rng.standard_normal(speech) * level / 3, -level, level)
    body[0], body[-1] = level, -level
    return np.concatenate([np.zeros(lead), body, np.zeros(trail)]).astype(np.int16)


def loader(audio: dict[str, np.ndarray]) -> Callable[[SynthesizedChunk], np.ndarray]:
    return lambda item: audio[item.chunk.id]


def read(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="float32")
    assert rate in (8000, 16000, 22050, 24000, 44100)
    return np.asarray(data)


def zero_runs(x: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """``(start, length)`` of every run of exact zeros at least ``min_len`` long."""
    is_zero = np.concatenate([[False], x == 0, [False]])
    edges = np.flatnonzero(np.diff(is_zero.astype(np.int8)))
    runs = [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return [r for r in runs if r[1] >= min_len]


def locate(haystack: np.ndarray, needle: np.ndarray) -> int:
    """Where ``needle`` best matches inside ``haystack`` by normalized cross-correlation."""
    h = haystack.astype(np.float64)
    n = needle.astype(np.float64)
    corr = signal.correlate(h, n, mode="valid", method="fft")
    energy = np.cumsum(np.concatenate([[0.0], h * h]))
    window = energy[len(n) :] - energy[: -len(n)]
    return int(np.argmax(corr / np.sqrt(np.maximum(window, 1e-12))))


BOUNDARIES = [Boundary.SENTENCE, Boundary.PARAGRAPH, Boundary.SCENE, Boundary.CHAPTER]
