"""Where to cut a chapter's audio into dataset clips.

A clip is a run of whole words: one sentence when that fits the length limits, several short
sentences merged when one alone is too short, or a piece of a long sentence cut at a pause
inside it. Cuts only ever fall in the gap between two words, never inside one, and each cut
keeps up to ``padding_ms`` of silence around the speech, but never more than half the gap to
the neighbouring word, so two clips never share audio.

Lengths are measured on the audio a clip will hold (padding included), so ``min_ms`` and
``max_ms`` hold for the files written. Words that cannot become part of a clip are returned as
skipped spans with the reason, for the report:

* ``too_short``: a sentence (or the tail of one) shorter than ``min_ms`` that cannot be merged
  with a neighbour without passing ``max_ms``;
* ``too_long_no_pause``: a stretch longer than ``max_ms`` with no pause to cut it at.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.models import ChapterTimeline, TimedWord

# A gap between two words of one sentence this long is a pause in the speech (a comma, a
# dash): a long sentence may be cut there. Measured on espeak-ng at its default rate, gaps
# inside a phrase stay under 60 ms and comma pauses are 150 ms or more.
MIN_PAUSE_MS = 100

TOO_SHORT = "too_short"
TOO_LONG_NO_PAUSE = "too_long_no_pause"


@dataclass(frozen=True, slots=True)
class Clip:
    """Words ``first_word..last_word`` (inclusive, indexes into the chapter timeline's words)
    and the audio ``[start_ms, end_ms)`` of the chapter that holds them."""

    id: str
    chapter: int
    first_word: int
    last_word: int
    start_ms: int
    end_ms: int
    text: str

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True, slots=True)
class SkippedSpan:
    chapter: int
    first_word: int
    last_word: int
    reason: str
    text: str

    @property
    def words(self) -> int:
        return self.last_word - self.first_word + 1


@dataclass(frozen=True, slots=True)
class ClipPlan:
    clips: tuple[Clip, ...]
    skipped: tuple[SkippedSpan, ...]


class _Cuts:
    """Where a clip starting at word ``i`` (``left``) or ending at word ``j`` (``right``) is cut."""

    def __init__(self, words: Sequence[TimedWord], padding_ms: int, duration_ms: int) -> None:
        self.words = words
        self.padding_ms = padding_ms
        self.duration_ms = max(duration_ms, words[-1].end_ms if words else 0)

    def _mid(self, j: int) -> int:
        """The middle of the gap after word ``j``: the furthest either neighbour's padding reaches."""
        return (self.words[j].end_ms + self.words[j + 1].start_ms) // 2

    def left(self, i: int) -> int:
        floor = self._mid(i - 1) if i > 0 else 0
        return max(self.words[i].start_ms - self.padding_ms, floor)

    def right(self, j: int) -> int:
        ceiling = self._mid(j) if j + 1 < len(self.words) else self.duration_ms
        return min(self.words[j].end_ms + self.padding_ms, ceiling)

    def span(self, i: int, j: int) -> int:
        return self.right(j) - self.left(i)

    def pause_after(self, j: int) -> bool:
        return j + 1 < len(self.words) and self.words[j + 1].start_ms - self.words[j].end_ms >= MIN_PAUSE_MS


def _sentences(words: Sequence[TimedWord]) -> list[tuple[int, int]]:
    """(first, last) word index of each run of words that share a sentence index."""
    runs: list[tuple[int, int]] = []
    first = 0
    for k in range(1, len(words) + 1):
        if k == len(words) or words[k].sentence != words[first].sentence:
            runs.append((first, k - 1))
            first = k
    return runs


def _fit_sentence(
    first: int, last: int, cuts: _Cuts, max_ms: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int, str]]]:
    """Pieces of one sentence that each fit ``max_ms``, cut only at pauses. A phrase (the words
    between two pauses) longer than ``max_ms`` is skipped; the phrases around it are grouped
    into as few pieces as possible, as evenly as possible."""
    if cuts.span(first, last) <= max_ms:
        return [(first, last)], []
    phrases: list[tuple[int, int]] = []
    start = first
    for j in range(first, last + 1):
        if j == last or cuts.pause_after(j):
            phrases.append((start, j))
            start = j + 1
    pieces: list[tuple[int, int]] = []
    lost: list[tuple[int, int, str]] = []
    run: list[tuple[int, int]] = []
    for phrase in phrases:
        if cuts.span(*phrase) > max_ms:
            pieces.extend(_balanced(run, cuts, max_ms))
            run = []
            lost.append((*phrase, TOO_LONG_NO_PAUSE))
        else:
            run.append(phrase)
    pieces.extend(_balanced(run, cuts, max_ms))
    return pieces, lost


def _balanced(phrases: Sequence[tuple[int, int]], cuts: _Cuts, max_ms: int) -> list[tuple[int, int]]:
    """Consecutive phrases (each fitting ``max_ms``) grouped into pieces that fit: the fewest
    pieces, and among those the one whose shortest piece is longest, so a long sentence is not
    cut into one long piece and a stub. Dynamic programming over the phrase boundaries."""
    n = len(phrases)
    if n == 0:
        return []
    # best[k]: (pieces, -shortest piece ms, where the last piece starts) for the first k phrases
    best: list[tuple[int, float, int]] = [(0, -math.inf, -1)]
    for k in range(1, n + 1):
        options = []
        for i in range(k - 1, -1, -1):
            span = cuts.span(phrases[i][0], phrases[k - 1][1])
            if span > max_ms:
                break  # starting earlier only makes the piece longer
            count, neg_shortest, _ = best[i]
            options.append((count + 1, max(neg_shortest, -float(span)), i))
        best.append(min(options))
    groups: list[tuple[int, int]] = []
    k = n
    while k > 0:
        i = best[k][2]
        groups.append((phrases[i][0], phrases[k - 1][1]))
        k = i
    return groups[::-1]


def _pack(
    units: Sequence[tuple[int, int]], cuts: _Cuts, min_ms: int, max_ms: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int, str]]]:
    """Merge consecutive units while a clip is shorter than ``min_ms`` and the merge fits
    ``max_ms``; a clip still too short joins the clip before it if that fits, else is skipped."""
    groups: list[tuple[int, int]] = []
    lost: list[tuple[int, int, str]] = []

    def close(group: tuple[int, int]) -> None:
        first, last = group
        if cuts.span(first, last) >= min_ms:
            groups.append(group)
            return
        if groups and groups[-1][1] + 1 == first and cuts.span(groups[-1][0], last) <= max_ms:
            groups[-1] = (groups[-1][0], last)
            return
        lost.append((first, last, TOO_SHORT))

    current: tuple[int, int] | None = None
    for unit in units:
        if current is None:
            current = unit
        elif current[1] + 1 == unit[0] and cuts.span(*current) < min_ms and cuts.span(current[0], unit[1]) <= max_ms:
            current = (current[0], unit[1])
        else:
            close(current)
            current = unit
    if current is not None:
        close(current)
    return groups, lost


def clip_id(prefix: str, timeline: ChapterTimeline, first_word: int) -> str:
    """``<prefix>-c03-s0012``: chapter (1-based) and the sentence the clip starts; a clip that
    starts inside a sentence adds its first word (``-w00345``). Stable across runs of the same
    text and settings, so a rerun overwrites the same files."""
    words = timeline.words
    sentence = words[first_word].sentence
    base = f"{prefix}-c{timeline.chapter + 1:02d}-s{sentence:04d}"
    starts_sentence = first_word == 0 or words[first_word - 1].sentence != sentence
    return base if starts_sentence else f"{base}-w{first_word:05d}"


def _text(words: Sequence[TimedWord], first: int, last: int) -> str:
    return " ".join(w.word.text for w in words[first : last + 1])


def choose_clips(timeline: ChapterTimeline, *, min_ms: int, max_ms: int, padding_ms: int, id_prefix: str) -> ClipPlan:
    """Cut one chapter into clips of ``min_ms..max_ms`` (padding included); see the module
    docstring for the rules."""
    if not 0 < min_ms < max_ms:
        raise ValueError(f"need 0 < min_ms < max_ms, got {min_ms} and {max_ms}")
    words = timeline.words
    if not words:
        return ClipPlan((), ())
    cuts = _Cuts(words, padding_ms, timeline.duration_ms)
    units: list[tuple[int, int]] = []
    lost: list[tuple[int, int, str]] = []
    for first, last in _sentences(words):
        pieces, dropped = _fit_sentence(first, last, cuts, max_ms)
        units.extend(pieces)
        lost.extend(dropped)
    groups, too_short = _pack(units, cuts, min_ms, max_ms)
    lost.extend(too_short)
    clips = tuple(
        Clip(
            id=clip_id(id_prefix, timeline, first),
            chapter=timeline.chapter,
            first_word=first,
            last_word=last,
            start_ms=cuts.left(first),
            end_ms=cuts.right(last),
            text=_text(words, first, last),
        )
        for first, last in groups
    )
    skipped = tuple(
        SkippedSpan(timeline.chapter, first, last, reason, _text(words, first, last))
        for first, last, reason in sorted(lost)
    )
    return ClipPlan(clips, skipped)
