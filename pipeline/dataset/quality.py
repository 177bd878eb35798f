"""The alignment quality check: does every word's time span hold speech?

A word whose span sits in a pause (a timing shifted by a stitching bug, an engine that
reported the wrong place) is wrong in subtitles, karaoke highlighting and dataset clips
alike, and it shows in the audio: the span is silent. The check reads the chapter audio once,
block by block, as 10 ms frame levels (one number per frame, so memory stays small however
long the chapter is), and counts a frame as speech when it is within ``SPEECH_BELOW_REF_DB``
of the chapter's typical loud frame. A word passes when speech fills at least
``MIN_SPEECH_FRACTION`` of its span; stops and short closures inside a word are silent for a
few frames, so the fraction is well below one. Words with nothing to say (no letter or digit,
e.g. a lone dash) are not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from pipeline.errors import InputError
from pipeline.models import ChapterTimeline, TimedWord

FRAME_MS = 10
# Reference level: this percentile of the frames that are not digital silence, i.e. the level
# of ordinary loud speech, robust to a single click or a quiet chapter.
_REFERENCE_PERCENTILE = 95
SPEECH_BELOW_REF_DB = 35.0
MIN_SPEECH_FRACTION = 0.25
_SILENT_RMS = 1e-5  # below -100 dBFS: digital silence, left out of the reference level
_BLOCK_FRAMES = 200  # 2 s of frames per read


def frame_levels(audio_path: Path) -> tuple[np.ndarray, int]:
    """RMS of each ``FRAME_MS`` frame of a mono file (a trailing partial frame included),
    read in blocks; returns (levels, sample rate)."""
    try:
        info = sf.info(str(audio_path))
    except (RuntimeError, OSError) as exc:
        raise InputError(f"{audio_path}: cannot read audio ({exc})") from None
    if info.channels != 1:
        raise InputError(f"{audio_path}: expected mono audio, found {info.channels} channels")
    hop = max(1, round(info.samplerate * FRAME_MS / 1000))
    levels: list[np.ndarray] = []
    try:
        with sf.SoundFile(str(audio_path)) as source:
            for block in source.blocks(hop * _BLOCK_FRAMES, dtype="float32"):
                count = -(-len(block) // hop)
                padded = np.zeros(count * hop, dtype=np.float64)
                padded[: len(block)] = block
                sums = (padded * padded).reshape(count, hop).sum(axis=1)
                # The last frame may be partial: average over the samples it really has.
                sizes = np.full(count, hop, dtype=np.float64)
                sizes[-1] = len(block) - (count - 1) * hop
                levels.append(np.sqrt(sums / sizes))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise InputError(f"{audio_path}: cannot read audio ({exc})") from None
    return (np.concatenate(levels) if levels else np.zeros(0)), info.samplerate


def speech_frames(levels: np.ndarray) -> np.ndarray:
    """A boolean per frame: speech or not (see the module docstring)."""
    audible = levels[levels > _SILENT_RMS]
    if audible.size == 0:
        return np.zeros(levels.shape, dtype=bool)
    reference = float(np.percentile(audible, _REFERENCE_PERCENTILE))
    return levels >= reference * 10 ** (-SPEECH_BELOW_REF_DB / 20)


def _has_speech_to_check(word: TimedWord) -> bool:
    return any(ch.isalnum() for ch in word.word.text)


def word_passes(word: TimedWord, speech: np.ndarray) -> bool:
    """True when speech fills at least MIN_SPEECH_FRACTION of the word's span. A span of no
    length holds no speech, so a zero-length word fails."""
    first = word.start_ms // FRAME_MS
    stop = -(-word.end_ms // FRAME_MS)  # frames the span touches
    if word.end_ms <= word.start_ms or first >= len(speech):
        return False
    span = speech[first:stop]
    return bool(span.any()) and float(span.mean()) >= MIN_SPEECH_FRACTION


def failing_words(timeline: ChapterTimeline, audio_path: Path) -> tuple[list[int], int]:
    """Indexes (into ``timeline.words``) of the checked words that fail, and how many were checked."""
    levels, _ = frame_levels(audio_path)
    speech = speech_frames(levels)
    failing: list[int] = []
    checked = 0
    for index, word in enumerate(timeline.words):
        if not _has_speech_to_check(word):
            continue
        checked += 1
        if not word_passes(word, speech):
            failing.append(index)
    return failing, checked


def word_energy_check(timeline: ChapterTimeline, audio_path: Path) -> tuple[int, int]:
    """(words passing, words checked) for one chapter; ``audio_path`` is the chapter's audio in
    the timeline's time base (the assembled chapter WAV)."""
    failing, checked = failing_words(timeline, audio_path)
    return checked - len(failing), checked


def alignment_quality(chapters: Sequence[tuple[ChapterTimeline, Path]], *, examples: int = 10) -> dict[str, Any]:
    """The check over a book, for report.json: ``{"words_checked", "words_passing",
    "fraction_passing", "failing_examples": [{"chapter", "word", "text", "start_ms",
    "end_ms"}, ...]}`` (chapters 1-based; at most ``examples`` failing words listed)."""
    checked = passing = 0
    shown: list[dict[str, Any]] = []
    for timeline, path in chapters:
        failing, n = failing_words(timeline, path)
        checked += n
        passing += n - len(failing)
        for index in failing[: max(0, examples - len(shown))]:
            w = timeline.words[index]
            shown.append(
                {
                    "chapter": timeline.chapter + 1,
                    "word": index,
                    "text": w.word.text,
                    "start_ms": w.start_ms,
                    "end_ms": w.end_ms,
                }
            )
    return {
        "words_checked": checked,
        "words_passing": passing,
        "fraction_passing": round(passing / checked, 4) if checked else 1.0,
        "failing_examples": shown,
    }
