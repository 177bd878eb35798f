"""Immutable values passed between stages.

Every stage takes these and returns new ones; none of them knows about Prefect, files on disk
or the engine in use. Times are integer milliseconds (exact, and fine enough for speech: a
rounding error of at most half a millisecond), offsets are character indices into the text of
the Document a word came from (``Document.file_span`` maps them to the file itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np


class Boundary(StrEnum):
    """What follows a piece of text; decides the pause inserted after it."""

    SENTENCE = "sentence"
    PARAGRAPH = "paragraph"
    SCENE = "scene"  # a scene break (`***`, `* * *`, `#`) between paragraphs
    CHAPTER = "chapter"


@dataclass(frozen=True, slots=True)
class Word:
    """One whitespace-delimited token as written, with its punctuation attached.

    Invariant: ``source_text[start:end] == text`` for the source it came from.
    ``spoken`` is what the engine is asked to say for it (after normalization and the
    lexicon); it may be several words ("42" -> "forty-two"). It may carry the API's inline
    markup, which every engine understands: ``<break time='500ms'/>`` (a pause),
    ``<phonemes>...</phonemes>`` and ``<digits>...</digits>``.
    """

    text: str
    start: int
    end: int
    spoken: str = ""

    def __post_init__(self) -> None:
        if not self.spoken and self.text:
            object.__setattr__(self, "spoken", self.text)

    def with_spoken(self, spoken: str) -> Word:
        return replace(self, spoken=spoken)


@dataclass(frozen=True, slots=True)
class Sentence:
    words: tuple[Word, ...]

    @property
    def start(self) -> int:
        return self.words[0].start

    @property
    def end(self) -> int:
        return self.words[-1].end

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass(frozen=True, slots=True)
class Paragraph:
    sentences: tuple[Sentence, ...]
    scene_break_before: bool = False

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.sentences for w in s.words)


@dataclass(frozen=True, slots=True)
class Chapter:
    """A chapter of one source. ``heading`` is the title as it stands in the source (offsets
    into it), or None when the chapter has no heading in the text (e.g. text before the first
    heading, or a title that only exists in an EPUB's navigation document)."""

    index: int  # position within its document, 0-based
    title: str
    source: str  # the file it came from, as given in the job (for EPUB: "book.epub#item.xhtml")
    paragraphs: tuple[Paragraph, ...]
    heading: Sentence | None = None

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for p in self.paragraphs for w in p.words)


@dataclass(frozen=True, slots=True)
class Document:
    """``text`` is what every word offset indexes into: the decoded file for plain text, the
    rendered visible text for Markdown, the kept text for EPUB. ``file_spans`` leads from
    ``text`` back to the decoded file where they differ (Markdown): an int32 array of shape
    (len(text), 2) holding each character's [start, end) in the file; None means the same."""

    path: str
    text: str
    chapters: tuple[Chapter, ...]
    title: str | None = None
    author: str | None = None
    language: str | None = None
    file_spans: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.file_spans is not None and self.file_spans.shape != (len(self.text), 2):
            raise ValueError(f"{self.path}: file_spans has shape {self.file_spans.shape}, not ({len(self.text)}, 2)")

    def file_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the decoded file that ``text[start:end]`` was rendered from: from where
        its first character came from to where its last one did, markup inside included
        (``*hers*.`` rendered as ``hers.`` spans ``hers*.``)."""
        spans = self.file_spans
        if spans is None:
            return start, end
        if end > start:
            return int(spans[start, 0]), int(spans[end - 1, 1])
        at = int(spans[start, 0]) if start < len(spans) else int(spans[-1, 1]) if len(spans) else 0
        return at, at


@dataclass(frozen=True, slots=True)
class Chunk:
    """A unit of synthesis: whole sentences (or pieces of one long sentence), <= max_chars."""

    id: str  # deterministic: "c{chapter:04d}-{seq:05d}"
    chapter: int  # book-wide chapter index, 0-based
    seq: int  # position within the chapter
    source: str
    words: tuple[Word, ...]
    pause_after: Boundary
    is_heading: bool = False
    # One entry per word: the index of its sentence within the chapter (headings included), so
    # later stages can group words into sentences without re-segmenting the text.
    sentence_ids: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        """The written text, whitespace collapsed: what subtitles and alignment show."""
        return " ".join(w.text for w in self.words)

    @property
    def spoken_words(self) -> tuple[str, ...]:
        return tuple(w.spoken for w in self.words)

    @property
    def start(self) -> int:
        return self.words[0].start

    @property
    def end(self) -> int:
        return self.words[-1].end


@dataclass(frozen=True, slots=True)
class WordTiming:
    """When one word is spoken, in ms relative to the start of the audio it belongs to."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_ms <= self.end_ms:
            raise ValueError(f"bad word timing {self.start_ms}..{self.end_ms} ms")

    def with_offset(self, ms: int) -> WordTiming:
        return WordTiming(self.start_ms + ms, self.end_ms + ms)


@dataclass(frozen=True, slots=True, eq=False)
class ChunkAudio:
    """What an engine returns for a chunk: mono int16 PCM and one timing per chunk word."""

    samples: np.ndarray
    sample_rate: int
    timings: tuple[WordTiming, ...]

    @property
    def duration_ms(self) -> int:
        return round(len(self.samples) * 1000 / self.sample_rate)


@dataclass(frozen=True, slots=True)
class SynthesizedChunk:
    """A chunk whose audio sits in the cache under ``cache_key`` (audio itself not in memory)."""

    chunk: Chunk
    cache_key: str
    timings: tuple[WordTiming, ...]
    num_samples: int
    sample_rate: int
    from_cache: bool


@dataclass(frozen=True, slots=True)
class ChunkPlacement:
    """Where assembly put a chunk: ``trim_start`` samples were cut from its head, and what
    remained starts at ``offset`` samples into the chapter audio and lasts ``length``."""

    chunk_id: str
    offset: int
    trim_start: int
    length: int


@dataclass(frozen=True, slots=True)
class ChapterLayout:
    chapter: int
    sample_rate: int
    num_samples: int
    placements: tuple[ChunkPlacement, ...]

    @property
    def duration_ms(self) -> int:
        return round(self.num_samples * 1000 / self.sample_rate)


@dataclass(frozen=True, slots=True)
class TimedWord:
    """A word placed on a chapter's timeline (ms from the start of the chapter audio)."""

    word: Word
    chapter: int
    source: str
    start_ms: int
    end_ms: int
    sentence: int  # sentence index within the chapter, for grouping

    def with_offset(self, ms: int) -> TimedWord:
        return replace(self, start_ms=self.start_ms + ms, end_ms=self.end_ms + ms)


@dataclass(frozen=True, slots=True)
class ChapterTimeline:
    chapter: int
    title: str
    source: str
    duration_ms: int
    words: tuple[TimedWord, ...]


@dataclass(frozen=True, slots=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    words: tuple[TimedWord, ...] = field(default=(), compare=False)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def with_offset(self, ms: int) -> Cue:
        return Cue(
            self.start_ms + ms,
            self.end_ms + ms,
            self.lines,
            tuple(w.with_offset(ms) for w in self.words),
        )
