"""Synthetic manuscripts of a chosen size, written by a seeded sentence generator.

The vocabulary and sentence patterns below are our own; nothing is copied from a corpus. The
text is plain ``.txt`` with "Chapter N" lines (the reader's chapter rule), so offsets in the
Document index the file directly. Chapters have a fixed length, so a manuscript of N words is a
prefix of one of M > N words made with the same seed: scaling runs compare like with like.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

WORDS_PER_CHAPTER = 3000

_NAMES = ("Mara", "Tobias", "Ines", "Callum", "Odile", "Perrin", "Wren", "Anselm", "Bettany", "Joss")
_PEOPLE = (
    "the ferryman", "the old clockmaker", "her brother", "the harbour master", "a tired clerk",
    "the youngest miller", "the night watchman", "his landlady", "the schoolteacher", "a stranger in grey",
)  # fmt: skip
_THINGS = (
    "the lantern", "a folded letter", "the brass key", "the ledger", "a basket of pears",
    "the broken compass", "an umbrella", "the map of the valley", "a jar of honey", "the last train ticket",
)  # fmt: skip
_PLACES = (
    "the quay", "the orchard", "the station", "the mill by the river", "the empty market",
    "the lighthouse stairs", "the chapel roof", "the narrow bridge", "the kitchen garden", "the back room",
)  # fmt: skip
_VERBS = (
    "carried", "found", "hid", "mended", "examined", "returned", "forgot", "polished", "weighed", "opened",
)  # fmt: skip
_MOTIONS = ("walked", "hurried", "wandered", "climbed", "drifted", "ran", "crept", "strolled")
_WHEN = (
    "before dawn", "after the rain", "on Thursday", "at half past seven", "in the late afternoon",
    "while the kettle boiled", "when the bells had finished", "long after supper",
)  # fmt: skip
_MOODS = ("quietly", "without a word", "with some care", "in a hurry", "slowly", "almost cheerfully")
_ADJECTIVES = ("cold", "bright", "crowded", "silent", "windy", "grey", "golden", "damp", "still")
_SPEECH = (
    "We should have left an hour ago", "Nobody keeps a record of that", "I counted them twice",
    "It will rain again tomorrow", "You know the way as well as I do", "Leave the door open",
)  # fmt: skip


def _sentence(rng: random.Random) -> str:
    someone = rng.choice(_NAMES + _PEOPLE)
    pattern = rng.randrange(7)
    if pattern == 0:
        text = f"{someone} {rng.choice(_VERBS)} {rng.choice(_THINGS)} {rng.choice(_WHEN)}"
    elif pattern == 1:
        text = f"{someone} {rng.choice(_MOTIONS)} to {rng.choice(_PLACES)} {rng.choice(_MOODS)}"
    elif pattern == 2:
        text = (
            f"The morning was {rng.choice(_ADJECTIVES)} and {rng.choice(_ADJECTIVES)}, "
            f"and {someone} {rng.choice(_VERBS)} {rng.choice(_THINGS)}"
        )
    elif pattern == 3:
        return f'"{rng.choice(_SPEECH)}," said {someone}.'
    elif pattern == 4:
        count = rng.randrange(2, 60)
        here, there = rng.sample(_PLACES, 2)
        text = f"There were {count} steps between {here} and {there}"
    elif pattern == 5:
        text = (
            f"{rng.choice(_WHEN)}, {someone} {rng.choice(_MOTIONS)} past "
            f"{rng.choice(_PLACES)} and {rng.choice(_VERBS)} {rng.choice(_THINGS)} {rng.choice(_MOODS)}"
        )
    else:
        text = f"Nobody at {rng.choice(_PLACES)} remembered {rng.choice(_THINGS)}, not even {someone}"
    return text[0].upper() + text[1:] + rng.choice("......!")


def _paragraphs(rng: random.Random) -> Iterator[list[str]]:
    while True:
        yield [_sentence(rng) for _ in range(rng.randrange(2, 7))]


def synthetic_manuscript(words: int, *, seed: int = 0) -> str:
    """Plain text of about ``words`` words (whole sentences, within one sentence of the
    target): chapters of WORDS_PER_CHAPTER words, each opened by a "Chapter N" line."""
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    chapter = 0
    in_chapter = WORDS_PER_CHAPTER  # start a chapter at once
    for paragraph in _paragraphs(rng):
        if total >= words:
            break
        if in_chapter >= WORDS_PER_CHAPTER:
            chapter += 1
            in_chapter = 0
            out.append(f"Chapter {chapter}\n\n")
        kept: list[str] = []
        for sentence in paragraph:
            if total >= words:
                break
            kept.append(sentence)
            count = len(sentence.split())
            total += count
            in_chapter += count
        out.append(" ".join(kept) + "\n\n")
    return "".join(out)
