"""A pronunciation lexicon: the user's say-it-like-this list for names and terms.

Entries come from the job (``text.lexicon``) and then from ``text.lexicon_file`` (YAML: a
list of mappings with the entry keys; CSV: a header ``match,say[,phonemes,regex,
case_sensitive]``); the first entry that matches a word wins, so the job file can override
a shared lexicon file.

- A plain entry matches a whole written word, ignoring the punctuation around it
  ("Hermione," matches ``Hermione`` and is spoken "her-MY-oh-nee,"); a trailing full stop
  may be part of the entry ("Dr."). A possessive "'s" is kept ("Hermione's").
- A ``regex`` entry is searched in the word's spoken form (after normalization) and
  replaces what it matches; ``say`` may use group references (``\\1``). It sees one word at
  a time, so it can never match across a space; it never rewrites inside markup.
- ``phonemes`` produce ``<phonemes>...</phonemes>`` (the API's inline markup, which the
  local engine understands too) and win over ``say`` when both are given.
- ``case_sensitive: false`` (the default) matches any capitalization.

The lexicon runs after normalization: normalization is a guess, an entry is the user's
decision, so an entry for "1984" or "Dr." overrides what normalization chose. Only spoken
forms change; written text, subtitles and alignment keep the book's words.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipeline.config import LexiconEntry, TextConfig
from pipeline.errors import ConfigError
from pipeline.models import Word
from pipeline.text.normalize import split_punctuation

_MARKUP = re.compile(r"<(\w+)\b[^>]*>.*?</\1>|<[^>]+/>", re.DOTALL)
_POSSESSIVE = re.compile(r"(.+?)(['’]s)", re.IGNORECASE)
_CSV_COLUMNS = ("match", "say", "phonemes", "regex", "case_sensitive")
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n", ""}


def _replacement(entry: LexiconEntry) -> str:
    if entry.phonemes is not None:
        return f"<phonemes>{entry.phonemes}</phonemes>"
    return entry.say or ""


@dataclass(frozen=True)
class Lexicon:
    """Immutable; build it with ``from_config`` (or from entries) and call ``apply``."""

    entries: tuple[LexiconEntry, ...] = ()
    _exact: dict[str, int] = field(init=False, repr=False, compare=False)
    _folded: dict[str, int] = field(init=False, repr=False, compare=False)
    _patterns: tuple[tuple[re.Pattern[str], str], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        exact: dict[str, int] = {}
        folded: dict[str, int] = {}
        patterns = []
        for index, entry in enumerate(self.entries):
            if entry.regex:
                flags = 0 if entry.case_sensitive else re.IGNORECASE
                patterns.append((re.compile(entry.match, flags), _replacement(entry)))
            elif entry.case_sensitive:
                exact.setdefault(entry.match, index)
            else:
                folded.setdefault(entry.match.casefold(), index)
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_folded", folded)
        object.__setattr__(self, "_patterns", tuple(patterns))

    @classmethod
    def from_config(cls, text_cfg: TextConfig, *, base_dir: Path) -> Lexicon:
        """The job's entries, then the lexicon file's (relative to ``base_dir``)."""
        entries = list(text_cfg.lexicon)
        for i, entry in enumerate(entries):
            if problem := _entry_problem(entry):
                raise ConfigError(f"text.lexicon[{i}]: {problem}")
        if text_cfg.lexicon_file:
            path = Path(text_cfg.lexicon_file).expanduser()
            entries.extend(load_lexicon_file(path if path.is_absolute() else base_dir / path))
        return cls(tuple(entries))

    @property
    def version(self) -> str:
        """A stable hash of the entries in order; "" when there are none."""
        if not self.entries:
            return ""
        dumped = json.dumps([e.model_dump(mode="json") for e in self.entries], sort_keys=True)
        return hashlib.sha256(dumped.encode()).hexdigest()[:16]

    def apply(self, words: Sequence[Word]) -> tuple[Word, ...]:
        """The words with their spoken forms rewritten where an entry matches."""
        if not self.entries:
            return tuple(words)
        return tuple(self._apply_one(w) for w in words)

    def _apply_one(self, word: Word) -> Word:
        whole = self._whole_word(word.text)
        if whole is not None:
            before, _, after = _edge_markup(word.spoken)
            return word.with_spoken(f"{before}{whole}{after}")
        if not self._patterns:
            return word
        spoken = word.spoken
        for pattern, replacement in self._patterns:
            spoken = _sub_outside_markup(pattern, replacement, spoken)
        return word if spoken == word.spoken else word.with_spoken(spoken)

    def _whole_word(self, text: str) -> str | None:
        """The spoken form of ``text`` if a plain entry matches it, punctuation kept."""
        lead, core, trail = split_punctuation(text)
        candidates = [(core, trail, "")]
        if trail.startswith("."):
            candidates.append((core + ".", trail[1:], ""))
        if possessive := _POSSESSIVE.fullmatch(core):
            candidates.append((possessive.group(1), trail, possessive.group(2)))
        best: tuple[int, str] | None = None
        for candidate, rest, suffix in candidates:
            index = self._exact.get(candidate)
            folded = self._folded.get(candidate.casefold())
            found = min((i for i in (index, folded) if i is not None), default=None)
            if found is not None and (best is None or found < best[0]):
                said = _replacement(self.entries[found])
                best = (found, f"{lead}{said}{suffix}{rest}")
        return best[1] if best else None


def _edge_markup(spoken: str) -> tuple[str, str, str]:
    """Pause markup at the start and end of a spoken form (set by ``extract_breaks``)."""
    m = re.fullmatch(r"((?:<break\b[^>]*/>\s*)*)(.*?)((?:\s*<break\b[^>]*/>)*)", spoken, re.DOTALL)
    return (m.group(1), m.group(2), m.group(3)) if m else ("", spoken, "")


def _sub_outside_markup(pattern: re.Pattern[str], replacement: str, spoken: str) -> str:
    out, last = [], 0
    for m in _MARKUP.finditer(spoken):
        out.append(pattern.sub(lambda hit: hit.expand(replacement), spoken[last : m.start()]))
        out.append(m.group())
        last = m.end()
    out.append(pattern.sub(lambda hit: hit.expand(replacement), spoken[last:]))
    return "".join(out)


# --- lexicon files ------------------------------------------------------------------------


def load_lexicon_file(path: Path) -> list[LexiconEntry]:
    """Entries of a YAML or CSV lexicon; ConfigError naming ``path:line`` on any problem."""
    suffix = path.suffix.lower()
    if suffix not in {".yaml", ".yml", ".csv"}:
        raise ConfigError(f"{path}: a lexicon file must be .yaml, .yml or .csv")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: lexicon file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read lexicon file: {exc.strerror}") from None
    rows = _csv_rows(text, path) if suffix == ".csv" else _yaml_rows(text, path)
    entries: list[LexiconEntry] = []
    seen: dict[tuple[str, bool], int] = {}
    for line, row in rows:
        entry = _validate(row, path, line)
        if not entry.regex:
            match = entry.match if entry.case_sensitive else entry.match.casefold()
            key = (match, entry.case_sensitive)
            if key in seen:
                first = seen[key]
                raise ConfigError(
                    f"{path}:{line}: duplicate entry for {entry.match!r} (first at line {first})"
                )
            seen[key] = line
        entries.append(entry)
    return entries


def _entry_problem(entry: LexiconEntry) -> str | None:
    """What pydantic lets through but would make an entry misbehave."""
    if not entry.match.strip():
        return "'match' is empty"
    if entry.regex and re.fullmatch(entry.match, "") is not None:
        return f"the regular expression {entry.match!r} matches empty text"
    return None


def _validate(row: dict[str, Any], path: Path, line: int) -> LexiconEntry:
    try:
        entry = LexiconEntry.model_validate(row)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            problem = f"unknown key '{key}'"
        elif err["type"] == "missing":
            problem = f"missing required key '{key}'"
        else:
            problem = f"{key + ': ' if key else ''}{err['msg'].removeprefix('Value error, ')}"
        raise ConfigError(f"{path}:{line}: {problem}") from None
    if misbehaviour := _entry_problem(entry):
        raise ConfigError(f"{path}:{line}: {misbehaviour}")
    return entry


def _yaml_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise ConfigError(f"{path}:1: a YAML lexicon must be a list of entries (match, say, ...)")
    rows = []
    for item, node in zip(data, root.value, strict=True):
        line = node.start_mark.line + 1
        if not isinstance(item, dict):
            raise ConfigError(f"{path}:{line}: an entry must be a mapping with 'match' and 'say'")
        rows.append((line, item))
    return rows


def _csv_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return []
    except csv.Error as exc:
        raise ConfigError(f"{path}:1: invalid CSV: {exc}") from None
    unknown = [h for h in header if h not in _CSV_COLUMNS]
    if unknown or "match" not in header or len(set(header)) != len(header):
        raise ConfigError(
            f"{path}:1: the CSV header must name columns from {','.join(_CSV_COLUMNS)} "
            f"(with 'match' and 'say' or 'phonemes'), once each; got {','.join(header)!r}"
        )
    rows = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                raise ConfigError(
                    f"{path}:{line}: {len(cells)} cells but the header has {len(header)}"
                )
            row: dict[str, Any] = {}
            for name, cell in zip(header, cells, strict=False):
                if name in {"regex", "case_sensitive"}:
                    row[name] = _csv_bool(cell, name, path, line)
                elif cell.strip() or name == "match":
                    row[name] = cell.strip()
            rows.append((line, row))
    except csv.Error as exc:
        raise ConfigError(f"{path}:{reader.line_num}: invalid CSV: {exc}") from None
    return rows


def _csv_bool(cell: str, name: str, path: Path, line: int) -> bool:
    value = cell.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{path}:{line}: {name}: expected true or false, got {cell!r}")
