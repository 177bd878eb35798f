"""Forced alignment with PocketSphinx: when each word of a known text is spoken in an audio.

For audio that came without word timings (the AsyncFlow WebSocket returns none). PocketSphinx
ships a US English acoustic model and the CMU pronouncing dictionary; the text is forced through
them as a single chain of words, so only the times are searched for, not the words.

A word the dictionary lacks is pronounced as two dictionary words joined ("coastguard"), a word
plus a possessive, or else spelled out letter by letter into rough phones: its neighbours
anchor it, so its times stay close even when its phones are poor. Alignment fails (None) when
the search loses the path even with the widest beams; the caller falls back to estimates.

Decoders are not thread-safe: each thread gets its own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import signal

RATE = 16000
FRAME_MS = 10  # PocketSphinx's frame shift
# Beams far wider than the defaults: a forced chain of words costs little more with them, and
# the defaults lose the path on long, synthetic utterances. A failure is retried wider still.
_BEAMS: tuple[dict[str, float], ...] = (
    {"beam": 1e-120, "wbeam": 1e-100, "pbeam": 1e-120},
    {"beam": 1e-250, "wbeam": 1e-200, "pbeam": 1e-250},
)
_MARKUP = re.compile(r"<phonemes>.*?</phonemes>|<[^>]*>", re.DOTALL | re.IGNORECASE)
_LETTER_PHONES = {
    "a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH", "i": "IH",
    "j": "JH", "k": "K", "l": "L", "m": "M", "n": "N", "o": "AA", "p": "P", "q": "K", "r": "R",
    "s": "S", "t": "T", "u": "AH", "v": "V", "w": "W", "x": "K S", "y": "Y", "z": "Z",
}  # fmt: skip


def available() -> bool:
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


def tokens(spoken: str) -> list[str]:
    """Dictionary tokens of a spoken form: markup dropped, lower case, split at anything but
    letters and apostrophes ("eighty-seven," -> ["eighty", "seven"])."""
    text = _MARKUP.sub(" ", spoken).lower().replace("\u2019", "'").replace("\u2018", "'")
    return [t.strip("'") for t in re.findall(r"[a-z']+", text) if t.strip("'")]


def _spelled(token: str) -> str:
    phones: list[str] = []
    for ch in token:
        phone = _LETTER_PHONES.get(ch)
        if phone and (not phones or phones[-1] != phone):
            phones.append(phone)
    return " ".join(phones) or "AH"


class SphinxAligner:
    def __init__(self) -> None:
        self._decoders: list[Any] = [None] * len(_BEAMS)

    def _decoder(self, level: int) -> Any:
        if self._decoders[level] is None:
            from pocketsphinx import Decoder

            self._decoders[level] = Decoder(samprate=RATE, lm=None, loglevel="FATAL", bestpath=False, **_BEAMS[level])
        return self._decoders[level]

    def _pronunciation(self, token: str) -> str:
        base = self._decoder(0)
        known = base.lookup_word(token)
        if known:
            return str(known)
        if token.endswith("'s") and base.lookup_word(token[:-2]):
            return f"{base.lookup_word(token[:-2])} Z"
        for cut in range(2, len(token) - 1):
            head, tail = base.lookup_word(token[:cut]), base.lookup_word(token[cut:])
            if head and tail:
                return f"{head} {tail}"
        return _spelled(token)

    def _know(self, token: str) -> None:
        if self._decoder(0).lookup_word(token):
            return
        phones = self._pronunciation(token)
        for level in range(len(_BEAMS)):
            self._decoder(level).add_word(token, phones, True)

    def align(self, spoken_words: Sequence[str], samples: np.ndarray, rate: int) -> list[tuple[int, int] | None] | None:
        """(start_ms, end_ms) of each word in ``samples`` (mono int16 at ``rate``); None for a
        word with nothing to say; None overall when the audio cannot be aligned."""
        per_word = [tokens(w) for w in spoken_words]
        flat = [t for ts in per_word for t in ts]
        if not flat or len(samples) == 0:
            return None
        for token in flat:
            self._know(token)
        audio = samples.astype(np.float64)
        if rate != RATE:
            audio = signal.resample_poly(audio, RATE, rate)
        pcm = np.clip(np.rint(audio), -32768, 32767).astype(np.int16).tobytes()
        for level in range(len(_BEAMS)):
            decoder = self._decoder(level)
            decoder.set_align_text(" ".join(flat))
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            if decoder.hyp() is None:
                continue
            segments = [s for s in decoder.seg() if not s.word.startswith(("<", "["))]
            if len(segments) != len(flat):
                continue
            spans: list[tuple[int, int] | None] = []
            k = 0
            for ts in per_word:
                if not ts:
                    spans.append(None)
                    continue
                first, last = segments[k], segments[k + len(ts) - 1]
                spans.append((first.start_frame * FRAME_MS, (last.end_frame + 1) * FRAME_MS))
                k += len(ts)
            return spans
        return None


_local = threading.local()


def aligner() -> SphinxAligner:
    """This thread's aligner (decoders load the model once per thread)."""
    found: SphinxAligner | None = getattr(_local, "aligner", None)
    if found is None:
        found = _local.aligner = SphinxAligner()
    return found
