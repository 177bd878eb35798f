"""The API's inline markup, parsed into segments every engine can act on.

AsyncFlow transcripts (and therefore our spoken forms) may carry three tags:
``<break time='500ms'/>`` (a pause; also ``"1s"``, ``'1.5s'``, double quotes, spaces before
``/>``), ``<phonemes>...</phonemes>`` (say these sounds) and ``<digits>...</digits>`` (read the
characters one by one). Only these three tag names are markup: any other ``<`` is ordinary text
("x < y", "<html>"), so prose that happens to contain angle brackets is spoken as written.
A tag of ours that is malformed (a break without a readable time, an unclosed ``<digits>``) is
an error rather than a guess, because it came from a lexicon or normalizer rule that is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.errors import RequestRejectedError

# Longest pause one tag may ask for; the API documents about 80-1200 ms, and anything far past
# that is a typo that would otherwise allocate minutes of silence.
MAX_BREAK_MS = 10_000


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Break:
    ms: int


@dataclass(frozen=True, slots=True)
class Phonemes:
    phonemes: str


@dataclass(frozen=True, slots=True)
class Digits:
    digits: str


Segment = Text | Break | Phonemes | Digits

# Any opening, closing or self-closing tag of ours; the attribute part is checked separately so
# that a near miss ("<break time=500ms/>") is reported instead of being read aloud.
_OUR_TAG = re.compile(r"<\s*(/?)\s*(break|phonemes|digits)\b([^<>]*)>", re.IGNORECASE)
_BREAK_TIME = re.compile(
    r"""^\s+time\s*=\s*(['"])\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)\s*\1\s*/?\s*$""", re.IGNORECASE
)


def _break_ms(attributes: str, tag: str) -> int:
    match = _BREAK_TIME.match(attributes)
    if match is None:
        expected = "<break time='500ms'/>"
        raise RequestRejectedError(f"markup: bad break tag {tag!r} (expected {expected})")
    value = float(match.group(2))
    ms = round(value * 1000) if match.group(3).lower() == "s" else round(value)
    if ms > MAX_BREAK_MS:
        raise RequestRejectedError(f"markup: break {tag!r} is longer than {MAX_BREAK_MS} ms")
    return ms


def parse_markup(text: str) -> list[Segment]:
    """Split ``text`` into text, break, phonemes and digits segments, in order.

    Adjacent text is merged and empty text dropped, so ``parse_markup("")`` is ``[]``.
    Raises RequestRejectedError (one line naming the tag) for a malformed tag of ours.
    """
    segments: list[Segment] = []
    pos = 0
    open_kind: str | None = None  # "phonemes" or "digits" while inside one
    open_at = 0
    open_tag = ""

    def add_text(piece: str) -> None:
        if not piece:
            return
        if segments and isinstance(segments[-1], Text):
            segments[-1] = Text(segments[-1].text + piece)
        else:
            segments.append(Text(piece))

    for match in _OUR_TAG.finditer(text):
        closing, name, attributes = match.group(1), match.group(2).lower(), match.group(3)
        tag = match.group(0)
        if open_kind is not None:
            if closing and name == open_kind:
                content = text[open_at : match.start()]
                segments.append(Phonemes(content) if name == "phonemes" else Digits(content))
                open_kind = None
                pos = match.end()
                continue
            raise RequestRejectedError(f"markup: {tag!r} inside {open_tag!r} (tags do not nest)")
        add_text(text[pos : match.start()])
        pos = match.end()
        if name == "break":
            if closing:
                raise RequestRejectedError(f"markup: stray closing tag {tag!r}")
            segments.append(Break(_break_ms(attributes, tag)))
        elif closing:
            raise RequestRejectedError(f"markup: {tag!r} without its opening tag")
        elif attributes.strip():
            raise RequestRejectedError(f"markup: {tag!r} takes no attributes")
        else:
            open_kind, open_at, open_tag = name, match.end(), tag
    if open_kind is not None:
        raise RequestRejectedError(f"markup: {open_tag!r} is never closed")
    add_text(text[pos:])
    return segments


def strip_markup(text: str) -> str:
    """``text`` without its tags: tag contents kept as written, each break replaced by a space,
    runs of whitespace collapsed to one and the ends trimmed (what a transcript would show)."""
    parts: list[str] = []
    for segment in parse_markup(text):
        if isinstance(segment, Text):
            parts.append(segment.text)
        elif isinstance(segment, Phonemes):
            parts.append(segment.phonemes)
        elif isinstance(segment, Digits):
            parts.append(segment.digits)
        else:  # a pause separates the words on either side of it
            parts.append(" ")
    return " ".join("".join(parts).split())


def total_break_ms(text: str) -> int:
    """Milliseconds of silence the breaks in ``text`` ask for (for estimates)."""
    return sum(s.ms for s in parse_markup(text) if isinstance(s, Break))
