"""Word start times from the PocketSphinx forced aligner: a reference that shares nothing with
our engine's word events or realignment.

PocketSphinx (``pocketsphinx`` wheel, dev extra) ships a US English acoustic model and the CMU
pronouncing dictionary. Alignment needs every word in the dictionary: a missing one is
pronounced as two dictionary words joined ("coastguard" = "coast" + "guard") or a word plus a
possessive "s"; a chunk with a word that still has no pronunciation is left out (and counted).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from pocketsphinx import Decoder

# Search beams far wider than the defaults: with them the default beams lose the path on over
# half of the (long, synthetic) chunks, and because an alignment graph is a single chain of
# words, the wide beams cost no more time here. A chunk that fails is retried wider still.
_BEAMS: tuple[dict[str, float], ...] = (
    {"beam": 1e-150, "wbeam": 1e-120, "pbeam": 1e-150},
    {"beam": 1e-250, "wbeam": 1e-200, "pbeam": 1e-250},
)
_FRAME_MS = 10  # PocketSphinx's frame shift
_MARKUP = re.compile(r"<phonemes>.*?</phonemes>|<[^>]*>", re.DOTALL)


def tokens(spoken: str) -> list[str]:
    """Dictionary-style tokens of a spoken form: lower case, markup removed, split at anything
    but letters and apostrophes ("eighty-seven," -> ["eighty", "seven"]; "you’ll" -> ["you'll"])."""
    text = _MARKUP.sub(" ", spoken).lower().replace("\u2019", "'").replace("\u2018", "'")
    return [t.strip("'") for t in re.findall(r"[a-z']+", text) if t.strip("'")]


class SphinxAligner:
    def __init__(self) -> None:
        self._decoders: list[Decoder | None] = [None] * len(_BEAMS)
        self.unknown_words: list[str] = []

    def _decoder(self, level: int) -> Decoder:
        decoder = self._decoders[level]
        if decoder is None:
            decoder = Decoder(samprate=16000, lm=None, loglevel="FATAL", bestpath=False, **_BEAMS[level])
            self._decoders[level] = decoder
        return decoder

    def _pronounce(self, token: str) -> bool:
        """Make sure every decoder knows ``token``; False when no pronunciation can be made."""
        base = self._decoder(0)
        if base.lookup_word(token):
            return True
        phones = None
        if token.endswith("'s") and base.lookup_word(token[:-2]):
            phones = f"{base.lookup_word(token[:-2])} Z"
        else:
            for cut in range(2, len(token) - 1):
                head, tail = base.lookup_word(token[:cut]), base.lookup_word(token[cut:])
                if head and tail:
                    phones = f"{head} {tail}"
                    break
        if phones is None:
            self.unknown_words.append(token)
            return False
        for level in range(len(_BEAMS)):
            self._decoder(level).add_word(token, phones, True)
        return True

    def word_starts_ms(self, spoken_words: Sequence[str], audio_16k: np.ndarray) -> list[float | None] | None:
        """Start (ms into the audio) of each word's first token; None for a word with nothing
        to say; None overall when the chunk cannot be aligned."""
        per_word = [tokens(w) for w in spoken_words]
        flat = [t for ts in per_word for t in ts]
        if not flat or not all(self._pronounce(t) for t in flat):
            return None
        pcm = np.clip(np.rint(audio_16k * 32768.0), -32768, 32767).astype(np.int16).tobytes()
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
            starts: list[float | None] = []
            k = 0
            for ts in per_word:
                starts.append(float(segments[k].start_frame * _FRAME_MS) if ts else None)
                k += len(ts)
            return starts
        return None
