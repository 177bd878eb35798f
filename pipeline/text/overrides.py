"""Spoken-text overrides: what a reviewer decided a passage should be spoken as.

They live in a YAML file beside the job (``<job>.spoken.yaml`` for ``<job>.yaml``), never in
the manuscript, and every run reads them, so ``narrate run`` and ``narrate review`` agree on
what each chunk says. An entry names one written word by its chapter source, its character
offset and its text, and gives its spoken form::

    - {source: data/manuscripts/book.md, start: 120, text: "Ledger,", spoken: "ledger,"}

The written text is part of the key: after an edit of the manuscript that moves or changes the
word, the entry no longer matches anything and is ignored (``unused`` tells which), rather
than putting words in the wrong place. Overrides apply after normalization and the lexicon.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.errors import ConfigError
from pipeline.fsutil import write_text_atomic
from pipeline.models import Word

SUFFIX = ".spoken.yaml"
_HEADER = (
    "# Spoken-text overrides (written by `narrate review`; read by every run of this job).\n"
    "# Each entry: the chapter source, the word's character offset, the word as written, and\n"
    "# what the engine is asked to say for it.\n"
)

Key = tuple[str, int, str]


def overrides_path(job_path: Path) -> Path:
    return job_path.with_name(job_path.stem + SUFFIX)


@dataclass(frozen=True)
class SpokenOverrides:
    entries: Mapping[Key, str]

    @classmethod
    def load(cls, path: Path) -> SpokenOverrides:
        if not path.exists():
            return cls({})
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read spoken-text overrides: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML in spoken-text overrides: {exc}") from None
        if data is None:
            return cls({})
        if not isinstance(data, list):
            raise ConfigError(f"{path}: spoken-text overrides must be a list of entries")
        entries: dict[Key, str] = {}
        for n, item in enumerate(data, start=1):
            if not isinstance(item, dict) or set(item) != {"source", "start", "text", "spoken"}:
                raise ConfigError(f"{path}: entry {n}: needs exactly source, start, text and spoken")
            spoken = str(item["spoken"]).strip()
            if not spoken or not isinstance(item["start"], int):
                raise ConfigError(f"{path}: entry {n}: 'spoken' must be non-empty and 'start' an integer")
            entries[(str(item["source"]), item["start"], str(item["text"]))] = spoken
        return cls(entries)

    def apply(self, source: str, words: Iterable[Word]) -> tuple[Word, ...]:
        if not self.entries:
            return tuple(words)
        out = []
        for w in words:
            spoken = self.entries.get((source, w.start, w.text))
            out.append(w if spoken is None else w.with_spoken(spoken))
        return tuple(out)

    def for_source(self, source: str) -> Callable[[Sequence[Word]], tuple[Word, ...]]:
        """``apply`` for the words of one chapter source (what ``map_chapter_words`` takes)."""
        return lambda words: self.apply(source, words)

    def updated(self, source: str, words: Iterable[Word], spoken: Iterable[str]) -> SpokenOverrides:
        """A copy with these words spoken as ``spoken`` (one spoken form per word)."""
        entries = dict(self.entries)
        for w, said in zip(words, spoken, strict=True):
            entries[(source, w.start, w.text)] = said.strip()
        return SpokenOverrides(entries)

    def save(self, path: Path) -> None:
        rows = [
            {"source": s, "start": start, "text": text, "spoken": spoken}
            for (s, start, text), spoken in sorted(self.entries.items())
        ]
        write_text_atomic(path, _HEADER + yaml.safe_dump(rows, allow_unicode=True, sort_keys=False, width=200))
