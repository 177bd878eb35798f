"""Our words to Piper phoneme ids, remembering which word every phoneme belongs to.

Piper voices are trained on espeak-ng IPA, one codepoint per id, each followed by the pad id,
between a start and an end id, with the clause punctuation espeak drops put back. We phonemize
a clause at a time (word-by-word phonemes would lose context: espeak says "a" alone as
"ˈeɪ" but "ɐ" in a sentence), so the clause's phonemes have to be shared out to its words.
When espeak keeps one phoneme word per word that is a plain zip; when it joins words ("of
the" -> "ʌvðə") or splits one ("forty-two"), each word's phonemes spoken alone are matched
against the clause's with a character diff, and every clause phoneme takes the owner of the
letter it matched (or of its neighbour).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np

BOS, EOS, PAD = "^", "$", "_"
NO_WORD = -1
# Stress marks and the like: matched against nothing, they go with the phoneme after them.
_MODIFIERS = frozenset("ˈˌ")
_LANGUAGE_SWITCH = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)?\)")
_CLOSERS = "\"'”’»)]} "
_CLAUSE_MARKS = {",": ",", ".": ".", ";": ";", ":": ":", "!": "!", "?": "?", "…": ".", "—": ",", "–": ","}

Phonemize = Callable[[str], list[str]]


@dataclass(frozen=True)
class Segment:
    """Something to say for word ``word``: plain text, or IPA given by the user."""

    word: int
    text: str
    ipa: bool = False


def clause_mark(text: str) -> str | None:
    """The punctuation that ends a clause after ``text`` ("said," -> ","), if any."""
    stripped = text.rstrip(_CLOSERS)
    return _CLAUSE_MARKS.get(stripped[-1]) if stripped else None


def _clean(ipa: str) -> str:
    return unicodedata.normalize("NFD", _LANGUAGE_SWITCH.sub("", ipa)).strip()


def _share_out(clause: str, refs: Sequence[tuple[int, str]]) -> list[int]:
    """The owning word of every character of ``clause`` (NO_WORD for spaces)."""
    tokens = clause.split(" ")
    if len(tokens) == len(refs) and all(len(ref.split()) == 1 for _, ref in refs):
        owners: list[int] = []
        for i, (token, (word, _)) in enumerate(zip(tokens, refs, strict=True)):
            if i:
                owners.append(NO_WORD)
            owners.extend([word] * len(token))
        return owners
    ours: list[str] = []
    our_owner: list[int] = []
    for word, ref in refs:
        for c in ref:
            if c != " " and c not in _MODIFIERS:
                ours.append(c)
                our_owner.append(word)
    theirs_at = [i for i, c in enumerate(clause) if c != " " and c not in _MODIFIERS]
    theirs = [clause[i] for i in theirs_at]
    owner_of: dict[int, int] = {}
    matcher = SequenceMatcher(None, ours, theirs, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "insert" or a1 == a0:
            continue
        for b in range(b0, b1):  # equal: one to one; replace: proportionally
            a = a0 + (b - b0) * (a1 - a0) // max(b1 - b0, 1)
            owner_of[theirs_at[b]] = our_owner[a]
    # Characters nobody matched (modifiers, inserted phonemes) take the next owned character's
    # word inside their phoneme word, else the previous one's.
    result = [NO_WORD] * len(clause)
    following = NO_WORD
    for i in range(len(clause) - 1, -1, -1):
        if clause[i] == " ":
            following = NO_WORD
            continue
        following = owner_of.get(i, following)
        result[i] = following
    previous = refs[0][0] if refs else NO_WORD
    for i, c in enumerate(clause):
        if c == " ":
            continue
        if result[i] == NO_WORD:
            result[i] = previous
        previous = result[i]
    # Words come in order: a stray match must not send time backwards.
    spoken = [i for i, c in enumerate(clause) if c != " "]
    if spoken:
        ordered = np.maximum.accumulate(np.asarray([result[i] for i in spoken]))
        for i, owner in zip(spoken, ordered, strict=True):
            result[i] = int(owner)
    return result


def phonemes_with_owners(segments: Sequence[Segment], phonemize: Phonemize) -> list[tuple[str, int]]:
    """The phoneme characters of a run of speech (no breaks inside), each with its word."""
    out: list[tuple[str, int]] = []

    def emit(ipa: str, owners: Sequence[int], mark: str | None) -> None:
        if not ipa and mark is None:
            return
        if out:
            out.append((" ", NO_WORD))
        out.extend(zip(ipa, owners, strict=True))
        if mark is not None:
            out.append((mark, NO_WORD))

    clause: list[Segment] = []

    def flush(mark: str | None) -> None:
        if not clause:
            return
        text = " ".join(s.text for s in clause)
        ipa = _clean(" ".join(phonemize(text)))
        refs = [(s.word, _clean(" ".join(phonemize(s.text)))) for s in clause]
        emit(ipa, _share_out(ipa, refs), mark)
        clause.clear()

    for segment in segments:
        if segment.ipa:
            flush(None)
            ipa = _clean(segment.text)
            emit(ipa, [NO_WORD if c == " " else segment.word for c in ipa], None)
            continue
        clause.append(segment)
        mark = clause_mark(segment.text)
        if mark is not None:
            flush(mark)
    flush(None)
    return out


def to_ids(phonemes: Sequence[tuple[str, int]], id_map: dict[str, list[int]]) -> tuple[list[int], list[int]]:
    """Piper's id sequence for ``phonemes`` and the owner of every id (NO_WORD for the start
    and end ids, spaces and punctuation). Each phoneme is followed by a pad, whose frames are
    the tail of the sound before it, so it takes that phoneme's owner. Characters the voice has
    no id for are dropped, as Piper does."""
    ids = [*id_map[BOS], *id_map[PAD]]
    owners = [NO_WORD] * len(ids)
    for char, owner in phonemes:
        mapped = id_map.get(char)
        if not mapped:
            continue
        ids.extend(mapped)
        owners.extend([owner] * len(mapped))
        ids.extend(id_map[PAD])
        owners.extend([owner] * len(id_map[PAD]))
    ids.extend(id_map[EOS])
    owners.extend([NO_WORD] * len(id_map[EOS]))
    # A space between two words (and its pad) is not a pause in connected speech: the model
    # spends those frames moving into the next word, so they start it. After punctuation the
    # space is where the model pauses, and stays nobody's.
    space = id_map.get(" ")
    if space:
        for i in range(len(ids) - 2, 0, -1):
            if ids[i] == space[0] and owners[i] == NO_WORD and owners[i - 1] != NO_WORD:
                after = i + len(space) + len(id_map[PAD])
                if after < len(ids) and owners[after] != NO_WORD:
                    owners[i:after] = [owners[after]] * (after - i)
    return ids, owners
