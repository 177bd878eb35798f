"""Real speech for a request, from the local espeak-ng engine.

The transcript is cut into entries at whitespace, except that a markup tag (``<break
time='400ms'/>``, ``<digits>1 2</digits>``) is never cut inside; the local engine gives one
timing per entry. An entry that is only a pause is not a word, so the alignment leaves it out;
every other entry becomes one word, shown without its tags.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from pipeline.emulator.responses import ApiError
from pipeline.emulator.validation import SynthesisRequest
from pipeline.emulator.voices import Voice
from pipeline.errors import RequestRejectedError
from pipeline.models import ChunkAudio
from pipeline.tts import local
from pipeline.tts.markup import strip_markup

# A tag of ours with everything it encloses, or a self-closing break: the atoms of an entry.
_ATOM = re.compile(
    r"<\s*(phonemes|digits)\b[^<>]*>.*?<\s*/\s*\1\s*>|<\s*break\b[^<>]*>|\S",
    re.IGNORECASE | re.DOTALL,
)


def transcript_entries(transcript: str) -> list[str]:
    """Whitespace-separated entries of ``transcript``, tags kept whole."""
    entries: list[str] = []
    current = ""
    pos = 0
    for match in _ATOM.finditer(transcript):
        if match.start() > pos and current:  # whitespace since the last atom ends an entry
            entries.append(current)
            current = ""
        current += match.group(0)
        pos = match.end()
    if current:
        entries.append(current)
    return entries


@dataclass(frozen=True, slots=True)
class Speech:
    """Audio for a request, and the words of its alignment with their times in ms."""

    audio: ChunkAudio
    words: tuple[str, ...]
    starts_ms: tuple[int, ...]
    ends_ms: tuple[int, ...]


def check_markup(transcript: str) -> list[str]:
    """The entries of a transcript whose markup is well formed; 400 naming the tag if not."""
    try:
        for entry in transcript_entries(transcript):
            strip_markup(entry)
    except RequestRejectedError as exc:
        raise ApiError(400, "VALIDATION_ERROR", f"transcript: {exc}", {"field": "transcript"}) from None
    return transcript_entries(transcript)


def _speak(entries: list[str], espeak_voice: str, sample_rate: int, speed: float | None) -> Speech:
    audio = local.speak(entries, voice=espeak_voice, sample_rate=sample_rate, speed=speed)
    words: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for entry, timing in zip(entries, audio.timings, strict=True):
        shown = strip_markup(entry)
        if shown:
            words.append(shown)
            starts.append(timing.start_ms)
            ends.append(timing.end_ms)
    return Speech(audio, tuple(words), tuple(starts), tuple(ends))


async def speak(request: SynthesisRequest, voice: Voice, entries: list[str]) -> Speech:
    """Synthesize in a worker thread: espeak is synchronous (and serialized inside ``local``),
    and the server's loop must keep answering other requests meanwhile."""
    espeak_voice = voice.espeak_for(request.language)
    return await asyncio.to_thread(_speak, entries, espeak_voice, request.output_format.sample_rate, request.speed)


async def speak_text(text: str, voice: Voice, sample_rate: int) -> ChunkAudio:
    """Plain speech for a voice preview."""
    entries = transcript_entries(text)
    return await asyncio.to_thread(
        lambda: local.speak(entries, voice=voice.espeak_voice, sample_rate=sample_rate, speed=None)
    )
