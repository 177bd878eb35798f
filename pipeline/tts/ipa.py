"""IPA to espeak-ng phoneme mnemonics, so ``<phonemes>`` content written in IPA (the usual way
to write a pronunciation) can be spoken by the local engine through espeak's ``[[...]]`` input.

The table covers the phonemes of English as dictionaries transcribe it (both British and
American conventions); espeak's own mnemonics (plain ASCII such as ``h@l'oU``) pass through
unchanged. Anything outside the table returns None, and the caller falls back to reading the
content as text rather than guessing at sounds.
"""

from __future__ import annotations

# Longest keys first at each position; values are espeak's English phoneme names.
_IPA_TO_ESPEAK: dict[str, str] = {
    # diphthongs and r-coloured vowels
    "eɪ": "eI", "aɪ": "aI", "ɔɪ": "OI", "oʊ": "oU", "əʊ": "oU", "aʊ": "aU",
    "ɪə": "i@", "ɪɚ": "i@", "eə": "e@", "ɛə": "e@", "ɛɚ": "e@", "ʊə": "U@", "ʊɚ": "U@",
    # affricates
    "tʃ": "tS", "t͡ʃ": "tS", "dʒ": "dZ", "d͡ʒ": "dZ",
    # long vowels
    "iː": "i:", "uː": "u:", "ɑː": "A:", "ɔː": "O:", "ɜː": "3:",
    # single vowels
    "i": "i:", "ɪ": "I", "e": "E", "ɛ": "E", "æ": "a", "a": "a", "ɑ": "A:", "ɒ": "0",
    "ɔ": "O:", "o": "O", "ʊ": "U", "u": "u:", "ʌ": "V", "ɜ": "3:", "ɝ": "3:", "ə": "@",
    "ɚ": "3", "ᵻ": "I2", "ɐ": "a#",
    # consonants
    "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "g": "g", "ɡ": "g", "f": "f", "v": "v",
    "θ": "T", "ð": "D", "s": "s", "z": "z", "ʃ": "S", "ʒ": "Z", "h": "h", "x": "x",
    "m": "m", "n": "n", "ŋ": "N", "l": "l", "ɫ": "l", "r": "r", "ɹ": "r", "ɾ": "t",
    "w": "w", "j": "j", "ʔ": "?",
    # stress, length and syllable marks
    "ˈ": "'", "ˌ": ",", "ː": ":", ".": "", " ": " ",
}
_LONGEST = max(len(key) for key in _IPA_TO_ESPEAK)


def to_espeak(phonemes: str) -> str | None:
    """espeak mnemonics for ``phonemes``: ASCII input is taken to be espeak's own notation;
    IPA is converted; None when a symbol is not in the table. Slashes and brackets that wrap
    a transcription (``/təˈmɑːtəʊ/``) are ignored."""
    text = phonemes.strip().strip("/[]").strip()
    if not text:
        return None
    if text.isascii():  # brackets inside would open or close espeak's [[...]] input
        return None if "[" in text or "]" in text else text
    out: list[str] = []
    i = 0
    while i < len(text):
        for size in range(min(_LONGEST, len(text) - i), 0, -1):
            mapped = _IPA_TO_ESPEAK.get(text[i : i + size])
            if mapped is not None:
                out.append(mapped)
                i += size
                break
        else:
            return None
    return "".join(out)
