"""Where text may break between a cue and the next, or between two lines of one cue.

Each gap between two neighbouring words gets a penalty; lower is a better place to break. The
order follows subtitle practice (Netflix's timed-text style guide and the BBC's): after a
sentence, then after clause punctuation or at a pause in the speech, then before a conjunction
or preposition, then anywhere else, and practically never between an article or possessive and
its noun, a title and a name, or a first name and a surname (two capitalized words in a row).
The same penalties choose cue breaks (cues.py) and line breaks inside a cue (``split_lines``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from pipeline.models import TimedWord

SENTENCE_END = 0
PAUSE = 8  # the speaker paused: the audio itself suggests a break
CLAUSE = 10
BEFORE_CONJUNCTION = 25
ANYWHERE = 50
FORBIDDEN = 500  # only taken when no other split can meet the limits

PAUSE_MS = 250
# A break between lines costs half what the same break between cues does: a viewer reads a
# whole cue at once, so splitting a sentence across cues hurts more than across lines.
LINE_WEIGHT = 0.5

# Determiners that must stay with the noun they introduce. "that" is left out on purpose: it
# is as often a conjunction ("he said that it was late") as a determiner; a break before it
# is good either way, so it is listed with the conjunctions below.
_DETERMINERS = frozenset(
    {
        "a", "an", "the", "my", "your", "his", "her", "its", "our", "their", "this", "these",
        "those", "whose", "every", "each", "no",
    }
)
_TITLES = frozenset(
    {
        "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "dr", "dr.", "prof", "prof.", "st", "st.", "sir",
        "lady", "lord", "miss", "madam", "mister", "capt", "capt.", "col", "col.", "gen", "gen.",
        "rev", "rev.", "fr", "fr.", "jr", "jr.",
    }
)
_CONJUNCTIONS_AND_PREPOSITIONS = frozenset(
    {
        "that", "what", "how", "why", "and", "but", "or", "nor", "yet", "so", "because",
        "although", "though", "while", "whereas", "if", "unless", "until", "since", "when",
        "whenever", "where", "wherever", "whether", "which", "who", "whom", "as", "than", "after",
        "before", "once", "about", "above", "across", "against", "along", "among", "around", "at",
        "behind", "below", "beneath", "beside", "between", "beyond", "by", "despite", "down",
        "during", "except", "for", "from", "in", "inside", "into", "like", "near", "of", "off",
        "on", "onto", "out", "outside", "over", "past", "through", "throughout", "to", "toward",
        "towards", "under", "underneath", "unlike", "up", "upon", "via", "with", "within",
        "without",
    }
)
_CLAUSE_END = ",;:.!?…—–"
_CLOSERS = "\"')]}»”’"
_OPENERS = "\"'([{«“‘—–"


def break_penalties(words: Sequence[TimedWord]) -> list[int]:
    """Penalty for breaking between ``words[k]`` and ``words[k + 1]``, for every k."""
    return [_penalty(a, b) for a, b in pairwise(words)]


def _penalty(a: TimedWord, b: TimedWord) -> int:
    left, right = a.word.text, b.word.text
    bare_left = left.strip(_OPENERS + _CLOSERS).lower()
    if bare_left in _TITLES and right[:1].isupper():
        return FORBIDDEN  # before the sentence check: splitters do take "Mr." for an ending
    if a.sentence != b.sentence:
        return SENTENCE_END
    if not any(ch.isalnum() for ch in right) and not right.startswith(tuple(_OPENERS)):
        return FORBIDDEN  # a lone closing quote, ellipsis or "!" belongs to what precedes it
    trailing = left.rstrip(_CLOSERS)
    if trailing.endswith(tuple(_CLAUSE_END)) or right.startswith(tuple(_OPENERS)):
        return CLAUSE
    best = ANYWHERE
    if b.start_ms - a.end_ms >= PAUSE_MS:
        best = PAUSE
    if bare_left in _DETERMINERS or _is_name_pair(left, right):
        return FORBIDDEN if best == ANYWHERE else best
    if right.strip(_OPENERS + _CLOSERS).lower() in _CONJUNCTIONS_AND_PREPOSITIONS:
        best = min(best, BEFORE_CONJUNCTION)
    return best


def _is_name_pair(left: str, right: str) -> bool:
    """Two capitalized words in a row ("Ada Lovelace", "New York"); "I" is not a name."""
    left = left.lstrip(_OPENERS)
    if left == "I" or not left[:1].isupper() or not right[:1].isupper():
        return False
    return left[-1:].isalnum()


def min_lines(lengths: Sequence[int], max_chars: int) -> int:
    """Fewest lines the words fit in (greedy filling is optimal for this); a word longer than
    a line takes a line of its own."""
    lines, current = 0, -1
    for length in lengths:
        if current >= 0 and current + 1 + length <= max_chars:
            current += 1 + length
        else:
            lines += 1
            current = length
    return lines


def split_lines(
    texts: Sequence[str], penalties: Sequence[int], max_chars: int, lines: int
) -> tuple[tuple[int, ...], float]:
    """Split words into exactly ``lines`` lines of at most ``max_chars`` (a lone overlong word
    excepted); returns the indexes where lines 2.. start, and the cost of that layout.

    ``penalties[k]`` is the cost of a break between ``texts[k]`` and ``texts[k + 1]``. Dynamic
    programming over (lines used, words placed); cues hold a few dozen words at most. Uneven
    lines cost their squared spread around the mean width / 10 (two lines 20 characters
    apart: 20), a break between lines ``LINE_WEIGHT`` times its penalty.
    """
    n = len(texts)
    if lines <= 1 or n <= 1:
        return (), 0.0
    cum = [0]
    for t in texts:
        cum.append(cum[-1] + len(t) + 1)

    def fits(i: int, j: int) -> bool:
        return cum[j] - cum[i] - 1 <= max_chars or j == i + 1

    mean = (cum[n] - 1 - (lines - 1)) / lines
    inf = float("inf")
    # best[k][j]: cost of words[:j] laid out in k + 1 lines; back[k][j]: where line k + 1 starts.
    best = [[inf] * (n + 1) for _ in range(lines)]
    back = [[0] * (n + 1) for _ in range(lines)]
    for j in range(1, n + 1):
        if fits(0, j):
            best[0][j] = (cum[j] - 1 - mean) ** 2 / 10
    for k in range(1, lines):
        for j in range(k + 1, n + 1):
            for i in range(k, j):
                if best[k - 1][i] == inf or not fits(i, j):
                    continue
                cost = (
                    best[k - 1][i]
                    + LINE_WEIGHT * penalties[i - 1]
                    + (cum[j] - cum[i] - 1 - mean) ** 2 / 10
                )
                if cost < best[k][j]:
                    best[k][j], back[k][j] = cost, i
    if best[lines - 1][n] == inf:
        raise ValueError(f"{n} words do not fit in {lines} lines of {max_chars} characters")
    starts: list[int] = []
    j = n
    for k in range(lines - 1, 0, -1):
        j = back[k][j]
        starts.append(j)
    return tuple(reversed(starts)), best[lines - 1][n]


def two_line_cost(
    cum: Sequence[int], penalties: Sequence[int], i: int, j: int, max_chars: int
) -> float:
    """Cheapest two-line layout of words ``i..j-1`` (``cum`` as in ``split_lines``): the fast
    path the cue search calls for every candidate cue."""
    best = float("inf")
    total = cum[j] - cum[i] - 1
    for p in range(i + 1, j):
        first = cum[p] - cum[i] - 1
        second = total - first - 1
        if (first > max_chars and p != i + 1) or (second > max_chars and p != j - 1):
            continue
        cost = LINE_WEIGHT * penalties[p - 1] + (first - second) ** 2 / 20
        if cost < best:
            best = cost
    return best
