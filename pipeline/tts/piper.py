"""The piper engine: a neural (VITS) voice on onnxruntime, offline, with exact word timings.

A chunk's words are phonemized with our espeak-ng (the phonemes Piper voices are trained on),
cut into pieces at every ``<break>`` as in the local engine, and each piece goes through the
model once. The model reports how many frames (of ``hop`` samples) it gave every input id;
every id belongs to one of our words (see piper_phonemes.py), so a word starts where its first
id's frames start and ends where its last id's frames end: timings are the model's own, not an
estimate. The audio is resampled from the voice's rate to the job's.

One onnxruntime session per process serves every chunk; calls run in threads at once (the
session is thread-safe and releases the GIL), each with one intra-op thread, so ``threads``
chunks in flight use ``threads`` cores without the threads of one call fighting another's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import EngineError, RequestRejectedError
from pipeline.models import ChunkAudio
from pipeline.tts import espeak, piper_voice
from pipeline.tts.local import _as_text, chunk_audio
from pipeline.tts.local_pool import default_processes
from pipeline.tts.markup import Break, Digits, Phonemes, Text, parse_markup
from pipeline.tts.piper_phonemes import NO_WORD, Segment, clause_mark, phonemes_with_owners, to_ids
from pipeline.tts.realign import voiced_range

# Every sentence is its own model call, as Piper does (the voices were trained on sentences),
# and a sentence longer than this many characters is also cut after a comma, semicolon or
# colon: the decoder's memory grows with the audio of one call. Measured on the opening of
# Alice with two calls at once: whole 400-character chunks peaked at 1.3 GB, sentences cut at
# 300 characters at 1.1 GB, at 150 at 0.73 GB, at 80 at 0.68 GB, all at the same speed. The
# model ends a sentence with about 240 ms of its own silence and starts the next after about
# 40, what it leaves between sentences inside one call, so nothing is added between calls.
_MAX_PIECE_CHARS = 150
# Silence at a word's edge next to a pause: 5 ms frames under -50 dBFS RMS (the model's pauses
# sit near -60 dBFS; its quietest consonants well above -50), as in the local engine.
_FRAME_S = 0.005
_SILENCE_RMS = 32768 * 10 ** (-50 / 20)


# Speed 1.0 is an audiobook pace. At its own length scale en_US-joe-medium reads about 200
# words a minute (1,465 words of the demo in 457 s; 2,964 of Alice in 817 s), brisk for
# narration and faster than subtitles can be read at 17 characters a second; 1.2 times longer
# gives about 170, the local engine's pace.
NARRATION_LENGTH = 1.2


def length_scale(base: float, speed: float | None) -> float:
    """Piper's length scale for a speed factor: twice as fast is half as long."""
    if speed is None:
        return base * NARRATION_LENGTH
    if not speed > 0:
        raise RequestRejectedError(f"piper engine: speed must be positive, got {speed}")
    return base * NARRATION_LENGTH / speed


def _segments(spoken: str, word: int) -> list[Segment | Break]:
    out: list[Segment | Break] = []
    for part in parse_markup(spoken):
        if isinstance(part, Break):
            out.append(part)
        elif isinstance(part, Text):
            out.append(Segment(word, _as_text(part.text).strip()))
        elif isinstance(part, Digits):
            out.append(Segment(word, " ".join(c for c in part.digits if c.isalnum())))
        elif isinstance(part, Phonemes):
            out.append(Segment(word, part.phonemes, ipa=True))
    return [s for s in out if isinstance(s, Break) or s.text]


def _plan(words: Sequence[str]) -> tuple[list[list[Segment] | Break], dict[int, int]]:
    """Runs of speech and the breaks between them; for each word that is only breaks, the
    index of the break it stands for."""
    items: list[list[Segment] | Break] = []
    pause_words: dict[int, int] = {}
    run: list[Segment] = []
    size = 0
    for index, spoken in enumerate(words):
        for part in _segments(spoken, index):
            if isinstance(part, Break):
                if run:
                    items.append(run)
                    run, size = [], 0
                items.append(part)
                pause_words.setdefault(index, len(items) - 1)
                continue
            run.append(part)
            size += len(part.text) + 1
            mark = clause_mark(part.text)
            if mark in (".", "!", "?") or (mark is not None and size > _MAX_PIECE_CHARS):
                items.append(run)
                run, size = [], 0
    if run:
        items.append(run)
    return items, pause_words


def _infer(
    voice: piper_voice.LoadedVoice, ids: list[int], scales: np.ndarray, sid: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """int16 audio at the voice's rate and the sample where each id's sound starts (plus the end)."""
    feeds: dict[str, np.ndarray] = {
        "input": np.asarray([ids], dtype=np.int64),
        "input_lengths": np.asarray([len(ids)], dtype=np.int64),
        "scales": scales,
    }
    if "sid" in voice.input_names:
        feeds["sid"] = np.asarray([sid or 0], dtype=np.int64)
    audio, frames = voice.session.run(None, feeds)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    frames = np.asarray(frames, dtype=np.float64).reshape(-1)
    if len(frames) != len(ids):
        raise EngineError(f"piper engine: the model gave {len(frames)} durations for {len(ids)} phonemes")
    edges = np.concatenate([[0.0], np.cumsum(frames)])
    total = edges[-1]
    # The decoder turns every frame into exactly `hop` samples (256 for Piper's voices), so
    # the edges are exact; the scaling only matters for a model built otherwise.
    bounds = np.rint(edges * (len(audio) / total)) if total > 0 else np.zeros(len(edges))
    samples = np.clip(np.rint(audio * 32767.0), -32768, 32767).astype(np.int16)
    return samples, bounds.astype(np.int64)


def _word_samples(
    samples: np.ndarray, bounds: np.ndarray, owners: Sequence[int], rate: int
) -> dict[int, tuple[int, int]]:
    """Each word's (first, end) sample in one model call, from its ids' frames.

    Next to a pause (after punctuation or the start of the call; before punctuation or its
    end) the model often spends a word's first or last frames in silence, a breath's worth
    of it: measured on Alice, one word in ten after a comma or at a sentence start began
    100-250 ms before its voice. So at those edges only, the span is narrowed to where the
    sound is (inside a sentence a silent closure, as in "took", belongs to its word)."""
    spans: dict[int, list[int]] = {}
    for position, owner in enumerate(owners):
        if owner != NO_WORD:
            span = spans.setdefault(owner, [position, position])
            span[1] = position
    frame = max(round(rate * _FRAME_S), 1)
    out: dict[int, tuple[int, int]] = {}
    for word, (first_id, last_id) in spans.items():
        start, end = int(bounds[first_id]), int(bounds[last_id + 1])
        voiced = voiced_range(samples, start, end, frame=frame, threshold=_SILENCE_RMS)
        if voiced[1] > voiced[0]:
            if first_id == 0 or owners[first_id - 1] == NO_WORD:
                start = voiced[0]
            if last_id + 1 >= len(owners) or owners[last_id + 1] == NO_WORD:
                end = voiced[1]
        out[word] = (start, end)
    return out


def speak(
    words: Sequence[str],
    *,
    voice: piper_voice.LoadedVoice,
    sample_rate: int,
    length: float,
    speaker: int | None = None,
) -> ChunkAudio:
    """Speak ``words`` (spoken forms, possibly with markup) with a loaded Piper voice and
    return mono int16 audio at ``sample_rate`` with exactly one timing per entry of ``words``.
    Breaks and empty words get zero-length timings, as from the local engine."""
    if not 1000 <= sample_rate <= 192_000:
        raise RequestRejectedError(f"piper engine: unsupported sample rate {sample_rate}")
    config = voice.config
    espeak_voice = espeak.select_voice(config.espeak_voice)

    def phonemize(text: str) -> list[str]:
        return espeak.text_to_phonemes(text, voice=espeak_voice)

    scales = np.asarray([config.noise_scale, length, config.noise_w], dtype=np.float32)
    native_rate = config.sample_rate
    items, pause_words = _plan(words)
    blocks: list[np.ndarray] = []
    ranges: dict[int, tuple[int, int]] = {}
    pause_starts: list[int] = []
    offset = 0
    for item in items:
        if isinstance(item, Break):
            pause_starts.append(offset)
            block = np.zeros(round(item.ms * native_rate / 1000), dtype=np.int16)
        else:
            pause_starts.append(-1)
            ids, owners = to_ids(phonemes_with_owners(item, phonemize), config.id_map)
            block, bounds = _infer(voice, ids, scales, speaker)
            for word, (start, end) in _word_samples(block, bounds, owners, native_rate).items():
                first, _ = ranges.get(word, (offset + start, offset + end))
                ranges[word] = (min(first, offset + start), offset + end)
        blocks.append(block)
        offset += len(block)

    return chunk_audio(
        blocks, ranges, pause_words, pause_starts,
        word_count=len(words), native_rate=native_rate, sample_rate=sample_rate,
    )


class PiperEngine:
    """The Engine protocol over :func:`speak`. ``voice``: a bundled voice name or a path to a
    ``.onnx`` file with its ``.onnx.json`` beside it. The voice is found and checked here, so
    a wrong path fails before anything is read or spent."""

    def __init__(
        self,
        *,
        voice: str,
        sample_rate: int,
        speed: float | None = None,
        speaker: int | str | None = None,
        threads: int | None = None,
        base: Path | None = None,
    ) -> None:
        self.files = piper_voice.resolve(voice, base=base)
        self.config = piper_voice.read_config(self.files)
        self.speaker = piper_voice.speaker_id(self.config, speaker, self.files)
        self.length_scale = length_scale(self.config.length_scale, speed)
        self.sample_rate = sample_rate
        if threads is not None and threads < 1:
            raise RequestRejectedError("piper engine: threads must be at least 1")
        self.threads = threads or default_processes()
        self._model_hash = piper_voice.content_hash(self.files)

    def _voice(self) -> piper_voice.LoadedVoice:
        return piper_voice.load(self.files, threads=1)

    async def synthesize(self, words: Sequence[str], *, chunk_id: str, need_timings: bool) -> ChunkAudio:
        # Durations come out of the same model call as the audio: timings are free.
        try:
            return await asyncio.to_thread(
                speak,
                words,
                voice=self._voice(),
                sample_rate=self.sample_rate,
                length=self.length_scale,
                speaker=self.speaker,
            )
        except EngineError as exc:
            raise type(exc)(f"chunk {chunk_id}: {exc}") from exc

    async def check(self) -> None:
        """Loads the model (about a second) and the espeak voice its phonemes need."""
        voice = await asyncio.to_thread(self._voice)
        await asyncio.to_thread(espeak.select_voice, voice.config.espeak_voice)

    def identity(self) -> dict[str, Any]:
        return {
            "engine": "piper",
            "model_sha256": self._model_hash,
            "speaker": self.speaker,
            "length_scale": self.length_scale,
            "noise_scale": self.config.noise_scale,
            "noise_w": self.config.noise_w,
            "sample_rate": self.sample_rate,
            "espeak": espeak.version(),
            "recipe": piper_voice.RECIPE_REVISION,
        }

    async def aclose(self) -> None:
        return None  # the session stays loaded for the life of the process
