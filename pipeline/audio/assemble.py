"""Chapter assembly: trim each chunk's edge silence, insert the pause its boundary calls for,
and stream the result to one float32 WAV per chapter; join chapter files into a book.

Layout arithmetic (what the timeline relies on): each chunk is cut to ``[trim_start,
trim_start + length)`` of its own samples and written at ``offset`` of the chapter file, so
sample ``s`` of the chunk lands at ``offset + s - trim_start``. A word timing that falls into
the trimmed-away silence (engines often start the first word at 0 ms, before the voice begins)
lands outside ``[offset, offset + length]``; callers clamp it into that range (``placed_ms``
does exactly that), so a word never leaks into a neighbouring chunk or a pause.

The chapter file is: head silence, then per chunk [leading <break>] chunk audio [pause], then
tail silence. The pause after a chunk is ``heading_ms`` for a spoken title, otherwise by its
``pause_after`` boundary (sentence / paragraph / scene); the last chunk gets none, because the
tail follows it. A ``<break time=.../>`` at the very start or end of a chunk's spoken text
would be trimmed away with the edge silence, so its length is added back to the gap there.
Silence is digital zero: mastering may lay room tone over it later.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.audio.wavio import atomic_wav_writer
from pipeline.config import AudioConfig
from pipeline.errors import EngineError, InputError, OutputError
from pipeline.models import (
    Boundary,
    ChapterLayout,
    Chunk,
    ChunkPlacement,
    SynthesizedChunk,
)
from pipeline.tts.markup import Break, Segment, Text, parse_markup

# Energy is measured over 10 ms windows: short enough to locate a word onset, long enough
# that a single stray sample or click does not count as speech.
_WINDOW_MS = 10.0
# A window is speech when its RMS is within 40 dB of the chunk's loudest window. Relative, so a
# quiet chunk and a loud one trim alike; 40 dB keeps soft fricatives and breathy onsets while
# still dropping the noise floor of decoded API audio (typically > 50 dB below speech).
_SPEECH_BELOW_PEAK_DB = 40.0
# Anything quieter than this (relative to full scale) is silence whatever the chunk's level.
_ABSOLUTE_FLOOR = 10 ** (-90.0 / 20)
_JOIN_BLOCK_FRAMES = 1 << 16


@dataclass(frozen=True, kw_only=True)
class PauseSettings:
    """How much silence goes where, in milliseconds."""

    edge_silence_ms: int = 40  # silence kept at each trimmed chunk edge
    sentence_ms: int = 350
    paragraph_ms: int = 800
    scene_ms: int = 1600
    heading_ms: int = 1000
    head_ms: int = 0  # room tone at the head of the file (mastering profiles ask for 750)
    tail_ms: int = 0  # ... and at its tail (2000)
    fade_ms: float = 5.0  # fade-in/out at each trimmed edge, so a cut never clicks

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 0:
                raise ValueError(f"PauseSettings.{name} must be >= 0, got {value}")

    @classmethod
    def from_config(
        cls, audio: AudioConfig, *, head_ms: int = 0, tail_ms: int = 0
    ) -> PauseSettings:
        return cls(
            edge_silence_ms=audio.edge_silence_ms,
            sentence_ms=audio.sentence_pause_ms,
            paragraph_ms=audio.paragraph_pause_ms,
            scene_ms=audio.scene_pause_ms,
            heading_ms=audio.heading_pause_ms,
            head_ms=head_ms,
            tail_ms=tail_ms,
        )


def ms_to_samples(ms: float, sample_rate: int) -> int:
    return round(ms * sample_rate / 1000)


def pause_after_ms(chunk: Chunk, pauses: PauseSettings) -> int:
    """The boundary pause after ``chunk`` when another chunk of the chapter follows it."""
    if chunk.is_heading:
        return pauses.heading_ms
    return {
        Boundary.SENTENCE: pauses.sentence_ms,
        Boundary.PARAGRAPH: pauses.paragraph_ms,
        Boundary.SCENE: pauses.scene_ms,
        Boundary.CHAPTER: 0,
    }[chunk.pause_after]


def edge_breaks_ms(chunk: Chunk) -> tuple[int, int]:
    """Total ``<break>`` time at the very start and at the very end of the chunk's spoken text
    (nothing but whitespace or other breaks between the tag and the edge)."""
    segments = parse_markup(" ".join(chunk.spoken_words))

    def is_break_or_blank(segment: Segment) -> bool:
        blank = isinstance(segment, Text) and not segment.text.strip()
        return blank or isinstance(segment, Break)

    def break_ms(run: Iterable[Segment]) -> int:
        edge = itertools.takewhile(is_break_or_blank, run)
        return sum(s.ms for s in edge if isinstance(s, Break))

    leading = break_ms(segments)
    if all(is_break_or_blank(s) for s in segments):  # only breaks: count them once
        return leading, 0
    return leading, break_ms(reversed(segments))


def placed_ms(placement: ChunkPlacement, chunk_ms: float, sample_rate: int) -> int:
    """Chapter time (ms) of a moment ``chunk_ms`` into the chunk's own audio, clamped to the
    placed audio so that times inside trimmed silence stay within the chunk."""
    sample = placement.offset + ms_to_samples(chunk_ms, sample_rate) - placement.trim_start
    sample = min(max(sample, placement.offset), placement.offset + placement.length)
    return round(sample * 1000 / sample_rate)


def _as_float(samples: np.ndarray) -> np.ndarray:
    """Mono samples scaled to +-1.0 full scale (int16 divided by 32768; floats as they are)."""
    array = np.asarray(samples)
    if array.dtype == np.int16:
        return array.astype(np.float32) / np.float32(32768.0)
    if np.issubdtype(array.dtype, np.floating):
        return array
    raise ValueError(f"expected int16 or float samples, got {array.dtype}")


def _speech_span(samples: np.ndarray, sample_rate: int) -> tuple[int, int] | None:
    """``[first, last + 1)`` sample of speech, or None when the audio holds no speech at all."""
    x = np.abs(_as_float(samples))  # float32 for chunks from the cache: plenty for a threshold
    if x.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {x.shape}")
    n = len(x)
    if n == 0:
        return None
    hop = max(1, ms_to_samples(_WINDOW_MS, sample_rate))
    starts = np.arange(0, n, hop)
    counts = np.diff(np.append(starts, n))
    rms = np.sqrt(np.add.reduceat(x * x, starts) / counts)
    loudest = float(rms.max())
    if loudest <= _ABSOLUTE_FLOOR:
        return None
    threshold = max(loudest * 10 ** (-_SPEECH_BELOW_PEAK_DB / 20), _ABSOLUTE_FLOOR)
    loud = np.flatnonzero(rms >= threshold)
    first, last = int(loud[0]), int(loud[-1])
    # Refine to the sample: the first/last sample at the threshold in the loud window or the
    # quieter window next to it (a soft onset may peak there before the energy rises). A loud
    # window always holds such a sample, since its peak is at least its RMS.
    lo = max(0, (first - 1) * hop)
    onset = lo + int(np.flatnonzero(x[lo : (first + 1) * hop] >= threshold)[0])
    hi = min(n, (last + 2) * hop)
    end = last * hop + int(np.flatnonzero(x[last * hop : hi] >= threshold)[-1]) + 1
    return onset, end


def trim_bounds(samples: np.ndarray, sample_rate: int, *, keep_ms: int) -> tuple[int, int]:
    """``(start, end)`` of the part of a chunk to keep: its speech plus up to ``keep_ms`` of
    the silence around it. Speech is found by short-window energy relative to the chunk's own
    loudest window, so the result does not depend on the chunk's level; nothing at or above
    that threshold is ever cut. Audio without any speech is kept whole (it is an intended
    pause, not an edge to trim)."""
    return _keep_around(_speech_span(samples, sample_rate), len(samples), keep_ms, sample_rate)


def _keep_around(
    span: tuple[int, int] | None, n: int, keep_ms: int, sample_rate: int
) -> tuple[int, int]:
    if span is None:
        return 0, n
    keep = ms_to_samples(keep_ms, sample_rate)
    return max(0, span[0] - keep), min(n, span[1] + keep)


def _fade_ramp(frames: int) -> np.ndarray:
    """Raised-cosine gain rising from near 0 to near 1 over ``frames`` samples."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(frames) + 0.5) / frames)).astype(np.float32)


def _fade_edges(segment: np.ndarray, fade_frames: int) -> np.ndarray:
    frames = min(fade_frames, len(segment) // 2)
    if frames > 0:
        ramp = _fade_ramp(frames)
        segment[:frames] *= ramp
        segment[-frames:] *= ramp[::-1]
    return segment


def _checked_audio(item: SynthesizedChunk, samples: np.ndarray, sample_rate: int) -> np.ndarray:
    chunk_id = item.chunk.id
    if item.sample_rate != sample_rate:
        raise EngineError(
            f"chunk {chunk_id}: audio is {item.sample_rate} Hz, the chapter is {sample_rate} Hz"
        )
    array = np.asarray(samples)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise EngineError(f"chunk {chunk_id}: expected mono audio, got shape {array.shape}")
    if len(array) != item.num_samples:
        raise EngineError(
            f"chunk {chunk_id}: cached audio has {len(array)} samples, expected {item.num_samples}"
        )
    try:
        return _as_float(array)
    except ValueError as exc:
        raise EngineError(f"chunk {chunk_id}: {exc}") from exc


def _check_chapter_order(items: Sequence[SynthesizedChunk]) -> None:
    chapter = items[0].chunk.chapter
    for previous, item in itertools.pairwise(items):
        if item.chunk.chapter != chapter:
            raise ValueError(f"chunk {item.chunk.id} is not in chapter {chapter}")
        if item.chunk.seq <= previous.chunk.seq:
            raise ValueError(f"chunk {item.chunk.id} is out of order after {previous.chunk.id}")


def assemble_chapter(
    items: Sequence[SynthesizedChunk],
    load: Callable[[SynthesizedChunk], np.ndarray],
    out_path: Path,
    *,
    pauses: PauseSettings,
    sample_rate: int,
) -> ChapterLayout:
    """Write one chapter's chunks (in order) as a float32 WAV at ``out_path``, atomically and
    one chunk at a time; ``load(item)`` returns the chunk's int16 mono samples. Returns where
    each chunk went. If ``load`` raises, its exception propagates and ``out_path`` is left as
    it was."""
    if not items:
        raise OutputError(f"{out_path}: no chunks to assemble")
    _check_chapter_order(items)
    fade_frames = ms_to_samples(pauses.fade_ms, sample_rate)
    last = len(items) - 1
    # The longest the file can be (nothing trimmed): decides between WAV and RF64.
    gaps_ms = sum(pause_after_ms(it.chunk, pauses) + sum(edge_breaks_ms(it.chunk)) for it in items)
    max_frames = (
        sum(item.num_samples for item in items)
        + ms_to_samples(pauses.head_ms + pauses.tail_ms + gaps_ms, sample_rate)
        + len(items) * 2  # each gap is rounded to whole samples on its own
    )
    placements: list[ChunkPlacement] = []
    with atomic_wav_writer(out_path, sample_rate=sample_rate, max_frames=max_frames) as writer:
        writer.write_silence(ms_to_samples(pauses.head_ms, sample_rate))
        for index, item in enumerate(items):
            samples = _checked_audio(item, load(item), sample_rate)
            span = _speech_span(samples, sample_rate)
            start, end = _keep_around(span, len(samples), pauses.edge_silence_ms, sample_rate)
            # Edge <break>s were cut with the edge silence (only audio with speech is trimmed).
            lead_ms, trail_ms = edge_breaks_ms(item.chunk) if span is not None else (0, 0)
            writer.write_silence(ms_to_samples(lead_ms, sample_rate))
            offset = writer.frames_written
            placements.append(ChunkPlacement(item.chunk.id, offset, start, end - start))
            writer.write(_fade_edges(np.array(samples[start:end], dtype=np.float32), fade_frames))
            del samples  # hold at most one chunk while the next one loads
            gap_ms = trail_ms + (pause_after_ms(item.chunk, pauses) if index < last else 0)
            writer.write_silence(ms_to_samples(gap_ms, sample_rate))
        writer.write_silence(ms_to_samples(pauses.tail_ms, sample_rate))
        num_samples = writer.frames_written
    return ChapterLayout(items[0].chunk.chapter, sample_rate, num_samples, tuple(placements))


def join_files(
    paths: Sequence[Path], out_path: Path, *, gap_ms: int, gap_fill: Callable[[int], np.ndarray] | None = None
) -> list[int]:
    """Concatenate audio files of one sample rate and channel count into a float32 WAV at
    ``out_path`` with ``gap_ms`` of silence between them (or ``gap_fill(frames)``, room tone
    say), streaming and atomically. Returns the sample offset where each file starts."""
    if gap_ms < 0:
        raise ValueError(f"gap_ms must be >= 0, got {gap_ms}")
    if not paths:
        raise OutputError(f"{out_path}: no files to join")
    infos = []
    for path in paths:
        try:
            infos.append(sf.info(str(path)))
        except (RuntimeError, OSError) as exc:
            raise InputError(f"{path}: cannot read audio ({exc})") from exc
    rate, channels = infos[0].samplerate, infos[0].channels
    for path, info in zip(paths, infos, strict=True):
        if (info.samplerate, info.channels) != (rate, channels):
            raise InputError(
                f"{path}: {info.samplerate} Hz with {info.channels} channel(s), but {paths[0]} "
                f"has {rate} Hz with {channels}"
            )
    gap = ms_to_samples(gap_ms, rate)
    max_frames = sum(info.frames for info in infos) + gap * (len(paths) - 1)
    offsets: list[int] = []
    with atomic_wav_writer(
        out_path, sample_rate=rate, channels=channels, max_frames=max_frames
    ) as writer:
        for index, path in enumerate(paths):
            if index and gap_fill is not None:
                writer.write(gap_fill(gap))
            elif index:
                writer.write_silence(gap)
            offsets.append(writer.frames_written)
            try:
                with sf.SoundFile(str(path)) as source:
                    blocks = source.blocks(
                        _JOIN_BLOCK_FRAMES, dtype="float32", always_2d=channels > 1
                    )
                    for block in blocks:
                        writer.write(block)
            except (sf.LibsndfileError, OSError) as exc:
                raise InputError(f"{path}: cannot read audio ({exc})") from exc
    return offsets
