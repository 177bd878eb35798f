"""Put the API's word timings back onto our own words.

AsyncFlow returns ``alignment.words`` tokenized its own way (undocumented): punctuation may be
attached or split off, markup may be echoed, dropped or split at its spaces, numbers may come
back spelled out, and several of our words may share one token or one of ours may span several.
So we never match token to token. Both sides are reduced to a stream of letters (case-folded,
accents and punctuation removed, markup tags removed, contents kept); each letter remembers the
token it came from, and the API's letters get times by spreading each token's time span evenly
over its letters. A character diff then carries every one of our letters to a time: equal runs
one to one, replaced runs (e.g. "42" against "fortytwo") proportionally, and letters the API
never said become a zero-length instant where they would have been.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from pipeline.models import WordTiming

# The API's inline markup tags (<break time='400ms'/>, <phonemes>, </digits>): dropped, their
# content kept. Any other "<" is ordinary text, as in pipeline.tts.markup.
_TAG = re.compile(r"<\s*/?\s*(?:break|phonemes|digits)\b[^<>]*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Alignment:
    """The API's ``alignment`` object, already checked (equal lengths, 0 <= start <= end,
    monotonic, inside the audio); times in milliseconds."""

    words: tuple[str, ...]
    starts: tuple[float, ...]
    ends: tuple[float, ...]


def letters(tokens: Sequence[str]) -> tuple[str, list[int]]:
    """The comparable letters of ``tokens`` joined by spaces, and for each letter the index
    of the token it came from. Tags are removed on the joined text because a tag such as
    ``<break time='1s'/>`` holds a space and may arrive split over two API tokens."""
    owner_of_char: list[int] = []
    for i, token in enumerate(tokens):
        if i:
            owner_of_char.append(-1)  # the joining space
        owner_of_char.extend([i] * len(token))
    joined = " ".join(tokens)
    keep = [True] * len(joined)
    for tag in _TAG.finditer(joined):
        keep[tag.start() : tag.end()] = [False] * (tag.end() - tag.start())
    out: list[str] = []
    owners: list[int] = []
    for ch, owner, kept in zip(joined, owner_of_char, keep, strict=True):
        if not kept or owner < 0:
            continue
        for c in unicodedata.normalize("NFKD", ch.casefold()):
            if c.isalnum():
                out.append(c)
                owners.append(owner)
    return "".join(out), owners


def has_letters(text: str) -> bool:
    return bool(letters([text])[0])


class _ApiTimeline:
    """Continuous time over the API's letters: letter ``x`` of a token spoken from ``s`` to
    ``e`` with ``n`` letters occupies ``s + (e - s) * k / n`` .. ``s + (e - s) * (k + 1) / n``."""

    def __init__(self, alignment: Alignment, owners: list[int]) -> None:
        self._owners = owners
        self._alignment = alignment
        self._first: dict[int, int] = {}
        self._count: dict[int, int] = {}
        for x, owner in enumerate(owners):
            self._first.setdefault(owner, x)
            self._count[owner] = self._count.get(owner, 0) + 1

    def at(self, x: float, *, closing: bool) -> float:
        """The time at letter position ``x`` (0..len); ``closing`` picks the end of the letter
        before a token boundary rather than the start of the letter after it."""
        size = len(self._owners)
        index = int(x)
        if closing and x == index and index > 0:
            index -= 1  # the end of the previous letter
            frac = 1.0
        elif index >= size:
            index, frac = size - 1, 1.0
        else:
            frac = x - index
        owner = self._owners[index]
        start, end = self._alignment.starts[owner], self._alignment.ends[owner]
        k = index - self._first[owner] + frac
        return start + (end - start) * k / self._count[owner]


def map_alignment(words: Sequence[str], alignment: Alignment, duration_ms: int) -> tuple[WordTiming, ...]:
    """One timing per entry of ``words`` (our spoken forms). Raises ValueError when the API
    said nothing recognisable although we asked for speech (the caller reports a bad response)."""
    ours, our_owners = letters(words)
    theirs, their_owners = letters(alignment.words)
    if ours and not theirs:
        raise ValueError("the alignment has no words for a transcript with words")
    spans: list[tuple[float, float] | None] = [None] * len(words)

    def place(our_index: int, start: float, end: float) -> None:
        word = our_owners[our_index]
        span = spans[word]
        spans[word] = (start, end) if span is None else (min(span[0], start), max(span[1], end))

    if ours:
        timeline = _ApiTimeline(alignment, their_owners)
        for op, a0, a1, b0, b1 in _letter_opcodes(ours, our_owners, theirs, their_owners):
            if op == "insert":
                continue  # said by the API, not in our text (e.g. an echoed tag name)
            ratio = (b1 - b0) / (a1 - a0)
            for a in range(a0, a1):
                x0, x1 = b0 + (a - a0) * ratio, b0 + (a - a0 + 1) * ratio
                if op == "delete":
                    instant = timeline.at(b0, closing=True)
                    place(a, instant, instant)
                else:
                    place(a, timeline.at(x0, closing=False), timeline.at(x1, closing=True))
    return _finish(spans, duration_ms)


Opcode = tuple[str, int, int, int, int]


def _token_spans(owners: list[int]) -> list[tuple[int, int]]:
    """Letter ranges of consecutive letters with the same owner token."""
    spans: list[tuple[int, int]] = []
    for x, owner in enumerate(owners):
        if spans and owners[spans[-1][0]] == owner:
            spans[-1] = (spans[-1][0], x + 1)
        else:
            spans.append((x, x + 1))
    return spans


def _letter_opcodes(ours: str, our_owners: list[int], theirs: str, their_owners: list[int]) -> list[Opcode]:
    """difflib opcodes from our letters to theirs, in two passes for speed: tokens first
    (letters per token; most match whole), then letters only inside the regions that differ.
    A single letter-level diff of a 5,000-character chunk takes about a third of a second."""
    if ours == theirs:
        return [("equal", 0, len(ours), 0, len(ours))]
    a_spans, b_spans = _token_spans(our_owners), _token_spans(their_owners)

    def bounds(spans: list[tuple[int, int]], i1: int, i2: int, size: int) -> tuple[int, int]:
        start = spans[i1][0] if i1 < len(spans) else size
        return start, (spans[i2 - 1][1] if i2 > i1 else start)

    out: list[Opcode] = []
    # autojunk off: in long inputs it would treat common tokens and letters as noise.
    tokens = SequenceMatcher(None, [ours[a:b] for a, b in a_spans], [theirs[a:b] for a, b in b_spans], autojunk=False)
    for op, i1, i2, j1, j2 in tokens.get_opcodes():
        a0, a1 = bounds(a_spans, i1, i2, len(ours))
        b0, b1 = bounds(b_spans, j1, j2, len(theirs))
        if op == "equal":
            out.append(("equal", a0, a1, b0, b1))
            continue
        letters_diff = SequenceMatcher(None, ours[a0:a1], theirs[b0:b1], autojunk=False)
        for sub, x1, x2, y1, y2 in letters_diff.get_opcodes():
            out.append((sub, a0 + x1, a0 + x2, b0 + y1, b0 + y2))
    return out


def estimate_timings(words: Sequence[str], duration_ms: int) -> tuple[WordTiming, ...]:
    """Timings when the API gave none (``/text_to_speech``): the audio's duration shared out
    by letter count. These are estimates, good enough to place a word within its chunk."""
    counts = [len(letters([w])[0]) for w in words]
    total = sum(counts)
    spans: list[tuple[float, float] | None] = []
    elapsed = 0
    for count in counts:
        if not count:
            spans.append(None)
            continue
        start = duration_ms * elapsed / total
        elapsed += count
        spans.append((start, duration_ms * elapsed / total))
    return _finish(spans, duration_ms)


def _finish(spans: list[tuple[float, float] | None], duration_ms: int) -> tuple[WordTiming, ...]:
    """Integer, ordered, non-overlapping timings inside the audio. A word with no letters of
    its own (empty, punctuation, a <break/>) becomes an instant where the previous word ended
    (or where the next one starts, at the head of a chunk)."""
    out: list[WordTiming] = []
    previous_end = 0
    for i, span in enumerate(spans):
        if span is None:
            if out:
                start = end = previous_end
            else:
                following = next((s for s in spans[i + 1 :] if s is not None), None)
                start = end = round(following[0]) if following else 0
        else:
            start, end = round(span[0]), round(span[1])
        start = min(max(start, previous_end), duration_ms)
        end = min(max(end, start), duration_ms)
        out.append(WordTiming(start, end))
        previous_end = end
    return tuple(out)
