"""How a WebSocket context turns the text it has been sent into pieces to speak.

Text arrives in fragments of any size. A context speaks as soon as it holds whole sentences:
everything up to the last sentence end followed by whitespace goes out as one piece (so text
sent a sentence at a time is spoken a sentence at a time, and a paragraph sent at once is
spoken as one performance). ``force`` speaks whatever is held; a run-on buffer with no
sentence end is cut at a word boundary so that latency stays bounded.
"""

from __future__ import annotations

import re

# A sentence end: terminal punctuation, any closing quotes or brackets, then whitespace.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*\s")
# A piece of text held longer than this without a sentence end is spoken up to its last space.
MAX_HELD_CHARS = 300


def take_ready(held: str, *, force: bool) -> tuple[str, str]:
    """Split ``held`` into (text to speak now, text to keep waiting). Either may be empty."""
    if force:
        return held, ""
    end = 0
    for match in _SENTENCE_END.finditer(held):
        end = match.end()
    if end == 0 and len(held) > MAX_HELD_CHARS:
        end = held.rfind(" ") + 1
    return held[:end], held[end:]
