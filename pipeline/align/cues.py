"""Group a chapter's timed words into subtitle cues that meet the style limits.

Two steps. First, where to cut: a shortest-path search over the gaps between words, where a
cue is any run of words that fits ``max_lines`` lines of ``max_chars_per_line`` and is spoken
within ``max_duration_ms``, and it costs the break after it (breaks.py), its line layout, a
little for existing at all (so cues are not needlessly short), and what it would break of the
timing rules given the silence around it. Second, when to show each cue: from its first word
(never earlier), until its last word ends, stretched into the following silence (up to the
next cue minus ``min_gap_ms``, and at most ``max_duration_ms``) to reach ``min_duration_ms`` and
a reading speed of ``max_cps``. When the speech itself is faster than that, the cue stays in
sync and too fast; ``cue_stats`` counts such cues.

Cues are chapter-relative and never cross a chapter; shift them with ``Cue.with_offset`` for a
whole-book file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from pipeline.align.breaks import break_penalties, min_lines, split_lines, two_line_cost
from pipeline.config import SubtitleStyle
from pipeline.models import ChapterTimeline, Cue, TimedWord

CUE_COST = 10  # every cue costs this much, so two short cues lose to one comfortable one
VIOLATION_COST = 30  # a cue that will break a timing rule, plus 1 per 20 ms it falls short
SENTENCE_INSIDE_COST = 15  # one sentence a cue reads best, unless timing needs company
LONG_SILENCE_MS = 1000  # a cue should not hang on screen across a silence this long...
LONG_SILENCE_COST = 40  # ...unless splitting there costs even more


def build_cues(timeline: ChapterTimeline, style: SubtitleStyle) -> tuple[Cue, ...]:
    """Every word of ``timeline`` in exactly one cue, in order, text as written."""
    words = timeline.words
    if not words:
        return ()
    penalties = break_penalties(words)
    cuts = _cut(words, penalties, style, timeline.duration_ms)
    return _place(words, penalties, cuts, style, timeline.duration_ms)


def cue_chars(cue: Cue) -> int:
    """Characters a viewer reads: spaces and punctuation count, line breaks do not."""
    return sum(len(line) for line in cue.lines)


def _needed_ms(chars: int, style: SubtitleStyle) -> int:
    return max(style.min_duration_ms, math.ceil(chars * 1000 / style.max_cps))


def _room_until(words: Sequence[TimedWord], j: int, style: SubtitleStyle, duration_ms: int) -> int:
    """The latest a cue ending before ``words[j]`` may stay on screen."""
    if j < len(words):
        return words[j].start_ms - style.min_gap_ms
    return max(duration_ms, words[-1].end_ms)


def _cut(
    words: Sequence[TimedWord], penalties: Sequence[int], style: SubtitleStyle, duration_ms: int
) -> list[int]:
    """Indexes where cues start (the first is 0), chosen by least total cost."""
    n = len(words)
    lengths = [len(w.word.text) for w in words]
    cum = [0]
    for length in lengths:
        cum.append(cum[-1] + length + 1)
    max_chars, max_lines = style.max_chars_per_line, style.max_lines
    inf = float("inf")
    best = [inf] * (n + 1)
    back = [0] * (n + 1)
    best[0] = 0.0
    for i in range(n):
        if best[i] == inf:
            continue
        start = words[i].start_ms
        lines, current, inside_cost = 1, -1, 0.0
        for j in range(i + 1, n + 1):
            length = lengths[j - 1]
            if current < 0:
                current = length
            elif current + 1 + length <= max_chars:
                current += 1 + length
            else:
                lines, current = lines + 1, length
            if lines > max_lines:
                break
            if j > i + 1:
                if words[j - 1].end_ms - start > style.max_duration_ms:
                    break
                if words[j - 1].start_ms - words[j - 2].end_ms >= LONG_SILENCE_MS:
                    inside_cost += LONG_SILENCE_COST
                if words[j - 1].sentence != words[j - 2].sentence:
                    inside_cost += SENTENCE_INSIDE_COST
            cost = best[i] + CUE_COST + inside_cost + (penalties[j - 1] if j < n else 0)
            chars = cum[j] - cum[i] - 1 - (lines - 1)
            room = min(_room_until(words, j, style, duration_ms), start + style.max_duration_ms)
            short = _needed_ms(chars, style) - (room - start)
            if short > 0:
                cost += VIOLATION_COST + short / 20
            if cost >= best[j]:
                continue  # the line layout only adds cost
            if lines == 2:
                cost += two_line_cost(cum, penalties, i, j, max_chars)
            elif lines > 2:
                cost += split_lines(
                    [w.word.text for w in words[i:j]], penalties[i : j - 1], max_chars, lines
                )[1]
            if cost < best[j]:
                best[j], back[j] = cost, i
    cuts: list[int] = []
    j = n
    while j > 0:
        j = back[j]
        cuts.append(j)
    return cuts[::-1]


def _place(
    words: Sequence[TimedWord],
    penalties: Sequence[int],
    cuts: Sequence[int],
    style: SubtitleStyle,
    duration_ms: int,
) -> tuple[Cue, ...]:
    cues: list[Cue] = []
    ends = [*cuts[1:], len(words)]
    previous_end: int | None = None
    for i, j in zip(cuts, ends, strict=True):
        texts = [w.word.text for w in words[i:j]]
        lines = min_lines([len(t) for t in texts], style.max_chars_per_line)
        starts, _ = split_lines(texts, penalties[i : j - 1], style.max_chars_per_line, lines)
        bounds = [0, *starts, len(texts)]
        text_lines = tuple(" ".join(texts[a:b]) for a, b in pairwise(bounds))
        start = words[i].start_ms
        if previous_end is not None:
            # Only if the speech left no room at all: start late rather than overlap.
            start = max(start, previous_end + style.min_gap_ms)
        spoken_end = max(words[j - 1].end_ms, start)
        wanted = start + _needed_ms(sum(len(t) for t in text_lines), style)
        stretched = min(max(spoken_end, wanted), start + style.max_duration_ms)
        end = min(max(spoken_end, stretched), _room_until(words, j, style, duration_ms))
        end = max(end, start + 1)
        cues.append(Cue(start, end, text_lines, tuple(words[i:j])))
        previous_end = end
    return tuple(cues)


def cue_stats(cues: Sequence[Cue], style: SubtitleStyle) -> dict[str, Any]:
    """How many cues keep every style limit, and how often each limit is broken:
    ``{"cues", "within_limits", "fraction_within_limits", "broken": {limit: count}}``.
    ``cues`` may be several chapters' chapter-relative lists one after another.

    ``build_cues`` only makes a cue too fast, too short or too close to the next where the
    words themselves come faster than the limits allow (showing them longer would put them out
    of sync with the speech). A cue may break several limits and counts once under each.
    """
    broken = {
        "line_too_long": 0,
        "too_many_lines": 0,
        "too_short": 0,
        "too_long": 0,
        "too_fast": 0,
        "gap_too_small": 0,
        "starts_before_speech": 0,
    }
    within = 0
    for k, cue in enumerate(cues):
        duration = cue.end_ms - cue.start_ms
        faults = []
        if any(len(line) > style.max_chars_per_line for line in cue.lines):
            faults.append("line_too_long")
        if len(cue.lines) > style.max_lines:
            faults.append("too_many_lines")
        if duration < style.min_duration_ms:
            faults.append("too_short")
        if duration > style.max_duration_ms:
            faults.append("too_long")
        if duration <= 0 or cue_chars(cue) * 1000 > style.max_cps * duration:
            faults.append("too_fast")
        following = cues[k + 1] if k + 1 < len(cues) else None
        # A cue starting before this one does is the first of the next chapter's list.
        if following and cue.start_ms <= following.start_ms < cue.end_ms + style.min_gap_ms:
            faults.append("gap_too_small")
        if cue.words and cue.start_ms < cue.words[0].start_ms:
            faults.append("starts_before_speech")
        for fault in faults:
            broken[fault] += 1
        within += not faults
    total = len(cues)
    return {
        "cues": total,
        "within_limits": within,
        "fraction_within_limits": round(within / total, 4) if total else 1.0,
        "broken": broken,
    }
