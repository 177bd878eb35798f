"""Synthetic manuscripts of a chosen size, written by a seeded sentence generator.

The vocabulary and sentence patterns below are our own; nothing is copied from a corpus. The
text is plain ``.txt`` with "Chapter N" lines (the reader's chapter rule), so offsets in the
Document index the file directly. Chapters have a fixed length, so a manuscript of N words is a
prefix of one of M > N words made with the same seed: scaling runs compare like with like.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

from pipeline.config import Job, JobConfig
from pipeline.models import Chunk
from pipeline.prepare import prepare_book

WORDS_PER_CHAPTER = 3000
_SEED_ATTEMPTS = 20

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
    # No sentence twice: narrate's cache is content-addressed, so a repeated chunk would be
    # synthesized once by narrate and every time by the baseline script, and the two would no
    # longer do the same work. Unique sentences make every chunk unique.
    seen: set[str] = set()
    while True:
        paragraph = []
        for _ in range(rng.randrange(2, 7)):
            sentence = _sentence(rng)
            while sentence in seen:
                sentence = _sentence(rng)
            seen.add(sentence)
            paragraph.append(sentence)
        yield paragraph


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


def words_manuscript(folder: Path, words: int, *, seed: int = 0) -> Path:
    """``synthetic_manuscript(words)`` written to ``folder/words-N.txt`` (rewritten each time:
    generating even 100,000 words takes a fraction of a second)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"words-{words}-seed{seed}.txt"
    path.write_text(synthetic_manuscript(words, seed=seed), encoding="utf-8")
    return path


# --- manuscripts cut to a number of chunks ---------------------------------------------------


def _job_for(manuscript: Path, max_chars: int) -> Job:
    config = JobConfig.model_validate(
        {"name": "sizing", "input": {"files": [str(manuscript)]}, "text": {"max_chars": max_chars}}
    )
    return Job(config, manuscript.parent / "sizing.yaml")


def book_chunks(manuscript: Path, max_chars: int) -> tuple[Chunk, ...]:
    """The chunks narrate makes of ``manuscript`` (the real text stage: reading, normalizing,
    chunking) with ``text.max_chars`` and every other text setting at its default."""
    return prepare_book(_job_for(manuscript.resolve(), max_chars)).chunks


def transcripts(chunks: Sequence[Chunk]) -> list[str]:
    """What the AsyncFlow engine sends for each chunk: its spoken forms joined by spaces."""
    return [" ".join(w for w in c.spoken_words if w) for c in chunks]


def _fits(path: Path, chunks: int, max_chars: int) -> bool:
    """``path`` makes exactly ``chunks`` chunks, no two with the same text."""
    sent = transcripts(book_chunks(path, max_chars))
    return len(sent) == chunks and len(set(sent)) == chunks


def chunked_manuscript(path: Path, chunks: int, *, max_chars: int, seed: int = 0) -> Path:
    """Write (or keep, when it is already right) a synthetic manuscript at ``path`` that
    narrate cuts into exactly ``chunks`` chunks, all different: generate more than enough
    text, then cut it where the chunk numbered ``chunks`` ends (a sentence end, so the greedy
    packing of the prefix is the same). The first chunk is the first chapter's title, so
    ``chunks`` >= 2.

    Different, because narrate's cache is content-addressed: a repeated chunk is synthesized
    once by narrate and every time by the baseline script, and the two would no longer do the
    same work. Sentences never repeat, but the pieces of a sentence cut to fit ``max_chars``
    may ("after the rain,"): then the next seed is tried."""
    if chunks < 2:
        raise ValueError(f"{path}: a manuscript makes at least 2 chunks (a chapter title and its text)")
    if path.exists() and _fits(path, chunks, max_chars):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(_SEED_ATTEMPTS):
        words = max(200, chunks * max_chars // 4)
        while True:
            text = synthetic_manuscript(words, seed=seed + attempt)
            path.write_text(text, encoding="utf-8")
            found = book_chunks(path, max_chars)
            if len(found) >= chunks:
                break
            words *= 2
        end = found[chunks - 1].words[-1].end
        path.write_text(text[:end] + "\n", encoding="utf-8")
        if _fits(path, chunks, max_chars):
            return path
    raise RuntimeError(f"{path}: no seed from {seed} gave {chunks} different chunks of at most {max_chars} characters")
