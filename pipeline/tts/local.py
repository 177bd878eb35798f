"""The local engine: real, offline speech from espeak-ng, with a timing for every word.

A chunk's words are laid out as espeak text (one space between words, markup rendered: digits
spelled one by one, phonemes as espeak ``[[...]]`` input), cut into pieces at every
``<break>``. Each piece is spoken on its own with no trailing pause, and exactly the requested
silence goes between pieces, so a break lasts what it says. espeak's word events are then
realigned onto our words (see realign.py), the audio resampled from espeak's 22,050 Hz to the
job's rate, and the sample positions turned into milliseconds.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import gcd
from typing import Any

import numpy as np

from pipeline.errors import EngineError, RequestRejectedError
from pipeline.models import ChunkAudio, WordTiming
from pipeline.tts import espeak
from pipeline.tts.ipa import to_espeak
from pipeline.tts.markup import Break, Digits, Phonemes, Text, parse_markup
from pipeline.tts.realign import word_ranges

# espeak's rate parameter for speed 1.0. espeak counts "words" its own way: its default of 175
# measures about 230 words a minute on ordinary prose, brisk for narration; 130 measures about
# 170, an audiobook pace (tests/test_local_engine.py checks the measured rate).
NORMAL_WPM = 130
# Speech edges: 5 ms frames, and anything under about -50 dBFS RMS counts as silence (espeak's
# pauses are digital zeros; the quietest consonant tails sit well above this).
_FRAME_S = 0.005
_SILENCE_RMS = 32768 * 10 ** (-50 / 20)


def words_per_minute(speed: float | None) -> int:
    """espeak's rate parameter for a speed factor (1.0 = normal), clamped to espeak's range."""
    if speed is None:
        return NORMAL_WPM
    if not speed > 0:
        raise RequestRejectedError(f"local engine: speed must be positive, got {speed}")
    return min(max(round(NORMAL_WPM * speed), espeak.RATE_MIN_WPM), espeak.RATE_MAX_WPM)


def _as_text(text: str) -> str:
    """Plain text espeak can take literally: control characters become spaces, and square
    brackets (silent anyway) are dropped so that nothing can open espeak's ``[[`` input."""
    cleaned = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return cleaned.replace("[", " ").replace("]", " ")


def _render(segment: Text | Phonemes | Digits) -> tuple[str, bool]:
    """espeak input for one segment, and whether it needs phoneme mode."""
    if isinstance(segment, Text):
        return _as_text(segment.text), False
    if isinstance(segment, Digits):
        return " ".join(c for c in segment.digits if c.isalnum()), False
    mnemonics = to_espeak(segment.phonemes)
    if mnemonics is None:  # not a notation we can read: say it as text instead
        return _as_text(segment.phonemes), False
    return f"[[{mnemonics}]]", True


@dataclass
class _Piece:
    """Text spoken in one espeak call, and the character span of each word in it."""

    text: str = ""
    spans: list[tuple[int, int, int]] = field(default_factory=list)  # (word, start, end)
    phonemes: bool = False

    def add(self, word: int, rendered: str) -> None:
        if self.text:
            self.text += " "
        start = len(self.text)
        self.text += rendered
        if self.spans and self.spans[-1][0] == word:  # a second segment of the same word
            start = self.spans[-1][1]
            self.spans.pop()
        self.spans.append((word, start, len(self.text)))


@dataclass(frozen=True)
class _Pause:
    ms: int


def _plan(words: Sequence[str]) -> tuple[list[_Piece | _Pause], dict[int, int]]:
    """The pieces and pauses to produce, and for each word that is only breaks, the index of
    the pause it stands for."""
    items: list[_Piece | _Pause] = []
    pause_words: dict[int, int] = {}
    piece = _Piece()
    for index, spoken in enumerate(words):
        for segment in parse_markup(spoken):
            if isinstance(segment, Break):
                if piece.spans:
                    items.append(piece)
                    piece = _Piece()
                items.append(_Pause(segment.ms))
                pause_words.setdefault(index, len(items) - 1)
                continue
            rendered, needs_phonemes = _render(segment)
            if rendered.strip():
                piece.add(index, rendered.strip())
                piece.phonemes |= needs_phonemes
    if piece.spans:
        items.append(piece)
    return items, pause_words


def _resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate or len(samples) == 0:
        return samples.astype(np.int16, copy=True)
    common = gcd(source_rate, target_rate)
    # float32 halves the filter's work; its 24-bit mantissa is far finer than int16 output.
    from scipy.signal import resample_poly  # imported when first needed: scipy.signal takes a second

    out = resample_poly(samples.astype(np.float32), target_rate // common, source_rate // common)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def speak(
    words: Sequence[str], *, voice: str = "en", sample_rate: int = 24000, speed: float | None = None
) -> ChunkAudio:
    """Speak ``words`` (spoken forms, each possibly several words or inline markup) and return
    mono int16 audio at ``sample_rate`` with exactly one timing per entry of ``words``.

    Thread-safe and deterministic: the same arguments give identical samples. A word that is
    only a break gets a zero-length timing where its pause starts; an empty word a zero-length
    timing where the previous word ended. Raises VoiceNotFoundError for an unknown voice and
    RequestRejectedError for malformed markup or settings.
    """
    if not 1000 <= sample_rate <= 192_000:
        raise RequestRejectedError(f"local engine: unsupported sample rate {sample_rate}")
    rate = words_per_minute(speed)
    internal_voice = espeak.select_voice(voice)
    native_rate = espeak.sample_rate()
    items, pause_words = _plan(words)

    blocks: list[np.ndarray] = []
    ranges: dict[int, tuple[int, int]] = {}  # word -> (first, last) sample of its speech
    pause_starts: list[int] = []
    offset = 0
    frame = max(round(native_rate * _FRAME_S), 1)
    for item in items:
        if isinstance(item, _Pause):
            pause_starts.append(offset)
            block = np.zeros(round(item.ms * native_rate / 1000), dtype=np.int16)
        else:
            pause_starts.append(-1)
            rendered = espeak.render(
                item.text, voice=internal_voice, words_per_minute=rate, phonemes=item.phonemes
            )
            block = rendered.samples
            spans = [(start, end) for _, start, end in item.spans]
            found = word_ranges(
                block, spans, rendered.word_events, frame=frame, threshold=_SILENCE_RMS
            )
            for (word, _, _), (first, last) in zip(item.spans, found, strict=True):
                if word in ranges:  # the word continues after a break: it spans both parts
                    ranges[word] = (ranges[word][0], offset + last)
                else:
                    ranges[word] = (offset + first, offset + last)
        blocks.append(block)
        offset += len(block)

    return chunk_audio(
        blocks, ranges, pause_words, pause_starts,
        word_count=len(words), native_rate=native_rate, sample_rate=sample_rate,
    )


def chunk_audio(
    blocks: Sequence[np.ndarray],
    ranges: dict[int, tuple[int, int]],
    pause_words: dict[int, int],
    pause_starts: Sequence[int],
    *,
    word_count: int,
    native_rate: int,
    sample_rate: int,
) -> ChunkAudio:
    """A chunk from the blocks an engine spoke at ``native_rate``: the audio joined and
    resampled, and a timing for each of ``word_count`` words from its sample range (in the
    joined native audio), its pause (a word that is only a break), or the previous word's end."""
    samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int16)
    out = _resample(samples, native_rate, sample_rate)
    duration_ms = round(len(out) * 1000 / sample_rate)

    def ms(sample: int) -> int:
        return min(round(sample * 1000 / native_rate), duration_ms)

    timings: list[WordTiming] = []
    previous_end = 0
    for index in range(word_count):
        if index in ranges:
            first, last = ranges[index]
            start = max(ms(first), previous_end)
            end = max(ms(last), start)
        elif index in pause_words:  # only breaks: an instant where its pause begins
            start = end = max(ms(pause_starts[pause_words[index]]), previous_end)
        else:  # nothing to say: an instant where the previous word ended
            start = end = previous_end
        timings.append(WordTiming(start, end))
        previous_end = end
    return ChunkAudio(samples=out, sample_rate=sample_rate, timings=tuple(timings))


def list_voices() -> list[dict[str, Any]]:
    """The espeak-ng voices, for ``narrate voices`` and the emulator. Any of them takes a
    ``+variant`` suffix (e.g. "en-us+f2"); a language code such as "en-gb" also works."""
    return [
        {
            "name": v.name,
            "identifier": v.identifier,
            "languages": list(v.languages),
            "gender": v.gender,
        }
        for v in espeak.list_voices()
    ]


class LocalEngine:
    """The Engine protocol over :func:`speak`. ``voice`` is an espeak-ng voice ("en",
    "en-us+f2"); ``language`` only chooses the voice when ``voice`` is empty."""

    def __init__(
        self,
        *,
        voice: str,
        sample_rate: int,
        speed: float | None = None,
        language: str | None = None,
    ) -> None:
        self.voice = voice.strip() or (language or "en")
        self.sample_rate = sample_rate
        self.speed = speed
        words_per_minute(speed)  # reject a bad speed now rather than at the first chunk

    async def synthesize(
        self, words: Sequence[str], *, chunk_id: str, need_timings: bool
    ) -> ChunkAudio:
        # Timings cost almost nothing next to synthesis, so they are always computed.
        try:
            return await asyncio.to_thread(
                speak, words, voice=self.voice, sample_rate=self.sample_rate, speed=self.speed
            )
        except EngineError as exc:
            raise type(exc)(f"chunk {chunk_id}: {exc}") from exc

    async def check(self) -> None:
        await asyncio.to_thread(espeak.select_voice, self.voice)

    def identity(self) -> dict[str, Any]:
        return {
            "engine": "local",
            "voice": self.voice,
            "sample_rate": self.sample_rate,
            "speed": self.speed,
            "espeak": espeak.version(),
            "recipe": espeak.RECIPE_REVISION,
        }

    async def aclose(self) -> None:
        return None  # espeak stays loaded for the life of the process
