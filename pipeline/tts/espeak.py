"""A ctypes binding to espeak-ng, as shipped in the ``espeakng-loader`` wheel (library 1.52 and
its voice data; nothing from the system).

The library is process-global: one initialization, one current voice, one synth callback. So
this module owns a single instance behind a lock; every call into the library holds it, which
makes the public functions safe to call from any thread (they run one at a time).

Determinism. espeak-ng keeps state between utterances: the pitch "flutter" oscillator and the
"roughness" cycle counter are function-level statics in its wave generator, so the same text
spoken twice comes out a few samples different unless both effects are off; and klatt voices
draw noise from a seeded generator. We therefore (1) speak every voice through a variant file
of our own that copies the voice's tone settings and then sets ``flutter 0`` and
``roughness 0``, and (2) reseed the generator before each utterance. Variant files must live
in the data directory's ``voices/!v`` (espeak only looks there), and the wheel's directory is
not ours to write, so we build a private overlay: a temporary directory of symlinks to the
wheel's data with a real ``voices/!v`` that also holds our variants. It is removed at exit.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import FatalEngineError, VoiceNotFoundError

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_PHONEMES = 0x100  # text inside [[ ]] is espeak phoneme mnemonics
_PHONEMES_IPA = 0x02  # espeak_TextToPhonemes: IPA rather than espeak mnemonics
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_PARAM_RATE = 1
_EE_OK = 0
# Audio handed to the callback per call: long blocks mean fewer trips into Python (a third
# less CPU than espeak's 60 ms default) and do not change the samples.
_BUFFER_MS = 1000

RATE_MIN_WPM, RATE_MAX_WPM = 80, 450  # the range espeak accepts for espeakRATE

# Voice-file keywords that shape the sound (as opposed to language rules); a variant file
# replaces all of them, so ours repeats the base voice's before overriding two.
_TONE_KEYWORDS = frozenset(
    {"pitch", "formant", "flutter", "roughness", "echo", "tone", "voicing", "breath", "breathw",
     "consonants", "speed", "klatt", "fast"}
)
_STEADY_LINES = ("flutter 0", "roughness 0")
_VARIANT_PREFIX = "narrate-"
# Bump when the way we build voices changes the audio (part of the local engine's identity).
RECIPE_REVISION = 1


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),  # a union of int, char* and char[8]; 8 bytes covers it
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated name) pairs, 0 ends
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True, slots=True)
class WordEvent:
    """espeak's report that a word starts: ``char_index`` (0-based) into the text it was
    given, ``sample`` into the audio of that call."""

    char_index: int
    sample: int


@dataclass(frozen=True, slots=True, eq=False)
class Rendered:
    samples: np.ndarray  # int16 mono at sample_rate()
    word_events: tuple[WordEvent, ...]


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    name: str
    identifier: str
    languages: tuple[str, ...]
    gender: str


def _decode_languages(address: int | None) -> tuple[str, ...]:
    languages: list[str] = []
    if not address:
        return ()
    offset = 0
    while ctypes.string_at(address + offset, 1) != b"\0":  # a priority byte of 0 ends the list
        name = ctypes.string_at(address + offset + 1)
        languages.append(name.decode("utf-8", "replace"))
        offset += len(name) + 2
    return tuple(languages)


def _build_overlay(source: Path) -> Path:
    """A private espeak-ng-data: symlinks to the wheel's files, with a writable voices/!v."""
    root = Path(tempfile.mkdtemp(prefix="narrate-espeak-")) / "espeak-ng-data"
    atexit.register(shutil.rmtree, root.parent, True)
    for path in (root, root / "voices", root / "voices" / "!v"):
        path.mkdir()
        original = source / path.relative_to(root)
        for entry in original.iterdir():
            if entry.name not in ("voices", "!v"):
                (path / entry.name).symlink_to(entry)
    return root


class _Library:
    """The loaded library and the buffers its callback fills. Use only under ``_lock``."""

    def __init__(self) -> None:
        try:
            import espeakng_loader

            self.source = Path(espeakng_loader.get_data_path())
            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except (ImportError, OSError, RuntimeError) as exc:
            raise FatalEngineError(f"local engine: cannot load espeak-ng ({exc})") from exc
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        try:
            self.data = _build_overlay(self.source)
        except OSError as exc:
            raise FatalEngineError(f"local engine: cannot set up espeak-ng voices ({exc})") from exc
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, os.fsencode(self.data), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise FatalEngineError(f"local engine: espeak-ng failed to start (data in {self.data})")
        self.sample_rate: int = rate
        self.version: str = (lib.espeak_Info(None) or b"?").decode()
        self._blocks: list[np.ndarray] = []
        self._events: list[WordEvent] = []
        # The library keeps only a raw pointer: this object must outlive every synthesis.
        self._callback = _SynthCallback(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)
        self._voices: dict[str, str] = {}  # voice spec -> name of our steady variant of it

    def _on_audio(
        self, wav: ctypes._Pointer[ctypes.c_short], count: int, events: ctypes._Pointer[_Event]
    ) -> int:
        if count > 0 and wav:
            self._blocks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_WORD:
                self._events.append(WordEvent(events[i].text_position - 1, events[i].sample))
            i += 1
        return 0  # keep going

    # -- voices ---------------------------------------------------------------------------

    def list_voices(self) -> list[VoiceInfo]:
        found: list[VoiceInfo] = []
        entries = self.lib.espeak_ListVoices(None)
        i = 0
        while entries[i]:
            v = entries[i].contents
            found.append(
                VoiceInfo(
                    name=(v.name or b"").decode("utf-8", "replace"),
                    identifier=(v.identifier or b"").decode("utf-8", "replace"),
                    languages=_decode_languages(v.languages),
                    gender={1: "male", 2: "female"}.get(v.gender, "unknown"),
                )
            )
            i += 1
        return found

    def select(self, spec: str) -> str:
        """The name to pass espeak for voice ``spec`` ("en", "en-us+f2", "English (America)",
        a language code like "pt-br"), spoken through our steady variant."""
        if spec in self._voices:
            return self._voices[spec]
        base, _, variant = spec.strip().partition("+")
        unknown = VoiceNotFoundError(
            f"local engine: espeak-ng voice {spec!r} does not exist"
            " (list them with `narrate voices`)"
        )
        if not base or base.casefold() in self._variant_names():
            raise unknown  # a variant named on its own ("m3") needs a voice ("en+m3")
        if self.lib.espeak_SetVoiceByName(base.encode()) != _EE_OK:
            # Not a voice name: maybe a language code ("en-gb"), which espeak selects by score.
            language = ctypes.create_string_buffer(base.encode())
            by_language = _Voice()
            by_language.languages = ctypes.cast(language, ctypes.c_void_p)
            if self.lib.espeak_SetVoiceByProperties(ctypes.byref(by_language)) != _EE_OK:
                raise unknown
            # espeak settles for a partial match ("no-such-voice" -> Norwegian): we do not.
            chosen = _decode_languages(self.lib.espeak_GetCurrentVoice().contents.languages)
            if base.casefold() not in (language.casefold() for language in chosen):
                raise unknown
        current = self.lib.espeak_GetCurrentVoice().contents
        identifier = (current.identifier or b"").decode().split("+")[0]
        if not _decode_languages(current.languages):
            raise unknown
        lines = [*self._tone_lines(identifier)]
        if variant:
            lines += self._variant_lines(variant, unknown)
        text = "\n".join(["language variant", *lines, *_STEADY_LINES, ""])
        name = _VARIANT_PREFIX + hashlib.sha1(text.encode()).hexdigest()[:10]
        path = self.data / "voices" / "!v" / name
        if not path.exists():
            path.write_text(text, encoding="utf-8")
        full = f"{identifier}+{name}"
        if self.lib.espeak_SetVoiceByName(full.encode()) != _EE_OK:
            raise unknown
        self._voices[spec] = full
        return full

    def _tone_lines(self, identifier: str) -> list[str]:
        for folder in ("voices", "lang"):
            path = self.source / folder / identifier
            if path.is_file():
                return [
                    line for line in _voice_lines(path) if line.split()[0].lower() in _TONE_KEYWORDS
                ]
        return []  # a voice espeak builds from its language rules alone

    def _variant_names(self) -> dict[str, Path]:
        """The wheel's voice variants ("m3", "f2", "Alex"...), by case-folded name."""
        return {p.name.casefold(): p for p in (self.source / "voices" / "!v").iterdir()}

    def _variant_lines(self, variant: str, unknown: VoiceNotFoundError) -> list[str]:
        if variant.isdigit():  # espeak's numbered variants: 1-9 male, 11-19 female
            number = int(variant)
            variant = f"m{number}" if number < 10 else f"f{number - 10}"
        path = self._variant_names().get(variant.strip().casefold())
        if path is None:
            raise unknown
        skip = ("language", "name")  # a variant's own labels, not sound settings
        return [line for line in _voice_lines(path) if line.split()[0].lower() not in skip]

    # -- speech ---------------------------------------------------------------------------

    def render(self, text: str, voice: str, words_per_minute: int, phonemes: bool) -> Rendered:
        lib = self.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise VoiceNotFoundError(f"local engine: espeak-ng voice {voice!r} vanished")
        lib.espeak_SetParameter(_PARAM_RATE, words_per_minute, 0)
        lib.espeak_ng_SetRandSeed(1)
        self._blocks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        flags = _CHARS_UTF8 | (_PHONEMES if phonemes else 0)
        status = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, flags, None, None)
        blocks, events = self._blocks, self._events
        self._blocks, self._events = [], []
        if status != _EE_OK:
            raise FatalEngineError(f"local engine: espeak-ng synthesis failed (status {status})")
        samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int16)
        return Rendered(samples.astype(np.int16, copy=False), tuple(events))


    def phonemes(self, text: str, voice: str) -> list[str]:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise VoiceNotFoundError(f"local engine: espeak-ng voice {voice!r} vanished")
        data = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
        cursor = ctypes.c_void_p(ctypes.addressof(data))
        clauses: list[str] = []
        # Each call translates one clause and moves the cursor on; NULL means the text is done.
        while cursor.value:
            out = self.lib.espeak_TextToPhonemes(ctypes.byref(cursor), _CHARS_UTF8, _PHONEMES_IPA)
            if out:
                clauses.append(out.decode("utf-8", "replace"))
        return clauses


def _voice_lines(path: Path) -> list[str]:
    """A voice file's attribute lines, without comments and blanks."""
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split("//")[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


_lock = threading.Lock()
_library: _Library | None = None


def _get() -> _Library:
    global _library
    if _library is None:
        _library = _Library()
    return _library


def sample_rate() -> int:
    """The rate espeak speaks at (22,050 Hz for the shipped voices)."""
    with _lock:
        return _get().sample_rate


def version() -> str:
    with _lock:
        return _get().version


def list_voices() -> list[VoiceInfo]:
    with _lock:
        return _get().list_voices()


def select_voice(spec: str) -> str:
    """Check that ``spec`` names an espeak-ng voice (optionally ``+variant``) and return the
    internal name that speaks it deterministically. Raises VoiceNotFoundError."""
    with _lock:
        return _get().select(spec)


def render(text: str, *, voice: str, words_per_minute: int, phonemes: bool = False) -> Rendered:
    """Speak ``text`` (UTF-8; ``[[...]]`` read as phoneme mnemonics when ``phonemes``) with an
    internal voice name from :func:`select_voice`. No pause is added after the last word."""
    words_per_minute = min(max(words_per_minute, RATE_MIN_WPM), RATE_MAX_WPM)
    with _lock:
        return _get().render(text, voice, words_per_minute, phonemes)


def text_to_phonemes(text: str, *, voice: str) -> list[str]:
    """The IPA espeak-ng would speak for ``text`` (UTF-8 plain text), one string per clause,
    words separated by spaces (espeak joins some unstressed words to the next one, "of the" ->
    "ʌvðə"); clause punctuation is not included. ``voice``: a name from :func:`select_voice`."""
    with _lock:
        return _get().phonemes(text, voice)
