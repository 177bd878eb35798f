"""Tokens and sentences of a stretch of text, with offsets into the text they came from.

A word is a maximal run of non-whitespace characters, punctuation attached, so that
``source[w.start:w.end] == w.text`` always holds and splitting never loses a character.
Sentence ends are decided between two tokens only (a token is never cut), from the
punctuation that closes the first one and the way the second one begins.
"""

from __future__ import annotations

import re

from pipeline.models import Sentence, Word

# `\s` in a str pattern is exactly str.isspace(), so tokens match str.split().
_TOKEN = re.compile(r"\S+")

_TERMINALS = frozenset(".!?…‽⁇⁈⁉。！？｡")
# Characters that may close a sentence after its terminal punctuation: `"Go."`, `(see above.)`.
_CLOSERS = "\"'”’»›)]}」』"
_MAY_END = _TERMINALS | frozenset(_CLOSERS)

# Always followed by more of the same sentence (titles before names, Latin connectives).
_NEVER_FINAL = frozenset({
    "mr", "mrs", "ms", "mx", "dr", "st", "mt", "ft", "prof", "rev", "fr", "gen",
    "col", "capt", "cpt", "lt", "sgt", "maj", "cmdr", "adm", "gov", "sen", "rep", "hon", "pres",
    "supt", "insp", "det", "messrs", "mme", "mlle", "vs", "v", "cf", "viz", "e.g", "i.e",
    "approx", "ca",
})  # fmt: skip
# Followed by a number they belong to: "No. 5", "pp. 12-14".
_BEFORE_NUMBER = frozenset({
    "no", "nos", "vol", "vols", "p", "pp", "fig", "figs", "ch", "chap", "sec", "art", "op",
})  # fmt: skip
# Dotted forms that end sentences as often as not; the next word decides.
_AMBIGUOUS_DOTTED = frozenset({"a.m", "p.m", "etc", "i"})
_DOTTED_ABBREVIATION = re.compile(r"(?:[^\W\d_]\.){2,}")


def tokenize(source: str, start: int, end: int) -> tuple[Word, ...]:
    """The whitespace-delimited tokens of ``source[start:end]``, offsets absolute."""
    return tuple(Word(m.group(), m.start(), m.end(), m.group()) for m in _TOKEN.finditer(source, start, end))


def segment_paragraph(source: str, start: int, end: int) -> tuple[Sentence, ...]:
    """Split ``source[start:end]`` into sentences of words; offsets index into ``source``."""
    words = tokenize(source, start, end)
    sentences: list[Sentence] = []
    first = 0
    for i in range(len(words) - 1):
        text = words[i].text
        # Most words end in a letter or a comma: skip them cheaply (a 1 MB book has 180k).
        if text[-1] in _MAY_END and ends_sentence(text, words[i + 1].text):
            sentences.append(Sentence(words[first : i + 1]))
            first = i + 1
    if first < len(words):
        sentences.append(Sentence(words[first:]))
    return tuple(sentences)


def ends_sentence(token: str, next_token: str) -> bool:
    """Whether a sentence ends between ``token`` and the ``next_token`` that follows it."""
    core = token.rstrip(_CLOSERS)
    if not core or core[-1] not in _TERMINALS:
        return False
    following = _first_alphanumeric(next_token)
    if following is None:
        # A dash, an ellipsis or a stray symbol after the stop continues the sentence rather
        # than starting one made only of punctuation.
        return False
    if following.islower():
        # "'Stop!' she said." / "Wait... what?" / "e.g. the"
        return False
    if core[-1] != "." or core.endswith(".."):
        return True  # ! ? … and "..." followed by a capital or a digit
    return not _is_abbreviation(core, following)


def _first_alphanumeric(token: str) -> str | None:
    for char in token:
        if char.isalnum():
            return char
    return None


def _is_abbreviation(core: str, following: str) -> bool:
    """Whether the full stop ending ``core`` belongs to an abbreviation that does not end the
    sentence before a word starting with ``following`` (a capital letter or a digit)."""
    stem = core.lstrip("\"'“‘«‹([{¡¿")[:-1]  # without the final full stop
    lowered = stem.lower()
    if lowered in _NEVER_FINAL:
        return True
    if lowered in _BEFORE_NUMBER:
        return following.isdigit()
    if lowered in _AMBIGUOUS_DOTTED:
        return False
    if len(stem) == 1 and stem.isupper():
        return True  # an initial: "J. R. Hartley"
    # "U.S.", "Ph.D." and the like rarely end a sentence in prose; "a.m." is handled above.
    return _DOTTED_ABBREVIATION.fullmatch(stem + ".") is not None
