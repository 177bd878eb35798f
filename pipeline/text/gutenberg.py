"""Project Gutenberg's header and licence in a plain-text ebook.

Gutenberg's plain-text files put the book between two marker lines, ``*** START OF THE
PROJECT GUTENBERG EBOOK <TITLE> ***`` and ``*** END OF THE PROJECT GUTENBERG EBOOK <TITLE>
***`` (older files say ``THIS`` for ``THE`` and ``E-BOOK`` or ``EBOOK``). What lies outside
them is the header (title, credits, release date) and the licence: not the book.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.text.structure import Block

_MARKER = r"^\s*\*{3}\s*{word} OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK\b[^\n]*$"
_START = re.compile(_MARKER.replace("{word}", "START"), re.IGNORECASE | re.MULTILINE)
_END = re.compile(_MARKER.replace("{word}", "END"), re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class GutenbergSpan:
    body_start: int  # the first character after the START marker line
    body_end: int  # the first character of the END marker line (len(text) without one)


def gutenberg_span(text: str) -> GutenbergSpan | None:
    """Where the book is inside a Gutenberg plain text, or None when it has no START marker."""
    start = _START.search(text)
    if start is None:
        return None
    end = _END.search(text, start.end())
    return GutenbergSpan(start.end(), end.start() if end else len(text))


def gutenberg_body_blocks(text: str, blocks: list[Block]) -> list[Block]:
    """``blocks`` without those outside the Gutenberg markers (all of them when there are none)."""
    span = gutenberg_span(text)
    if span is None:
        return blocks
    return [b for b in blocks if (b.start >= span.body_start and b.end <= span.body_end) or (b.start == b.end == 0)]
