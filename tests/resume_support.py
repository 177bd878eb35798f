"""Shared pieces for the resume, hostile-input and secret tests: a short manuscript, what the
cache holds, byte snapshots of output folders, and a search for a secret and its fragments."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

_ADJECTIVES = ["quiet", "amber", "narrow", "restless", "silver", "patient", "hollow", "bright", "distant", "gentle"]
_NOUNS = ["harbour", "lantern", "ferry", "orchard", "signal", "meadow", "tower", "river", "garden", "bridge"]
_VERBS = ["waited", "listened", "shimmered", "turned", "rested", "wandered", "glowed", "settled", "leaned", "drifted"]


def sentences() -> Iterable[str]:
    """Distinct, speakable sentences (no digits, so normalization leaves them alone)."""
    for adjective, noun, verb in itertools.product(_ADJECTIVES, _NOUNS, _VERBS):
        yield f"The {adjective} {noun} {verb} beside the water."


def short_book(*, chapters: int = 2, paragraphs: int = 3, per_paragraph: int = 2) -> str:
    """Markdown: a title line, then ``chapters`` chapters of ``paragraphs`` paragraphs, every
    sentence different from every other, so every chunk has its own text."""
    source = iter(sentences())
    lines = ["# A Short Book", ""]
    for c in range(chapters):
        lines += [f"## Chapter {'ABCDEFGH'[c]}", ""]
        for _ in range(paragraphs):
            lines += [" ".join(next(source) for _ in range(per_paragraph)), ""]
    return "\n".join(lines)


def cache_keys(cache_dir: Path) -> set[str]:
    """The keys of the entries a cache folder holds (temporary files are not entries)."""
    return {p.stem for p in (cache_dir / "objects").glob("*/*.chunk")}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes under ``folder`` by relative path. The lock file is left out: it is
    not an output, and it holds the pid of the last run that took the lock."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".narrate.lock"
    }


def secret_fragments(secret: str, *, size: int = 8) -> set[str]:
    """The key and every ``size``-character piece of it: what a truncated or partly redacted
    echo would still show. Pieces made only of the common "sk_live_"-style prefix are dropped."""
    body_start = secret.rfind("_") + 1 if secret.startswith("sk_") else 0
    pieces = {secret[i : i + size] for i in range(body_start, len(secret) - size + 1)}
    return {secret} | pieces


def find_secret(secret: str, blobs: dict[str, bytes]) -> list[str]:
    """Where any fragment of ``secret`` occurs: '<name>: <fragment>' for each hit."""
    needles = sorted(secret_fragments(secret), key=len, reverse=True)
    hits = []
    for name, blob in blobs.items():
        for needle in needles:
            if needle.encode() in blob:
                hits.append(f"{name}: {needle}")
                break
    return hits


def files_under(*folders: Path) -> dict[str, bytes]:
    """Every file under ``folders`` (recursively), by path, for ``find_secret``."""
    return {str(p): p.read_bytes() for folder in folders for p in folder.rglob("*") if p.is_file()}
