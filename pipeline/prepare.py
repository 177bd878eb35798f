"""Text stage: manuscripts -> book chapters -> spoken words -> chunks.

Reads every input file, keeps the selected chapters, fills in what each word is spoken as
(normalization, then the lexicon), and packs the chapters into chunks. Pure apart from
reading the input files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from pipeline.config import Job
from pipeline.models import Chapter, Chunk, Document, Paragraph, Sentence, Word
from pipeline.publish.metadata import BookMetadata, resolve_metadata
from pipeline.text.chunking import chunk_document
from pipeline.text.lexicon import Lexicon
from pipeline.text.normalize import extract_breaks, normalize_words
from pipeline.text.overrides import SpokenOverrides, overrides_path
from pipeline.text.readers import read_manuscript
from pipeline.text.select import select_chapters
from pipeline.text.structure import HeadingOnly, apply_heading_only_rule

WordsFn = Callable[[Sequence[Word]], tuple[Word, ...]]


@dataclass(frozen=True, slots=True)
class PreparedBook:
    title: str
    author: str | None
    language: str | None
    documents: tuple[Document, ...]
    chapters: tuple[Chapter, ...]  # book order; chunk.chapter indexes into this
    chunks: tuple[Chunk, ...]
    lexicon_version: str
    metadata: BookMetadata | None = None
    heading_only: tuple[HeadingOnly, ...] = field(default=())  # what input.heading_only did

    def chunks_of(self, chapter: int) -> list[Chunk]:
        return [c for c in self.chunks if c.chapter == chapter]


def _map_sentence(sentence: Sentence, fn: WordsFn) -> Sentence:
    return Sentence(fn(sentence.words))


def map_chapter_words(chapter: Chapter, fn: WordsFn, heading_fn: WordsFn | None = None) -> Chapter:
    """Apply ``fn`` to every sentence's words (and ``heading_fn`` to the heading)."""
    paragraphs = tuple(
        Paragraph(tuple(s for s in (_map_sentence(s, fn) for s in p.sentences) if s.words), p.scene_break_before)
        for p in chapter.paragraphs
    )
    heading = chapter.heading
    if heading is not None:
        heading = _map_sentence(heading, heading_fn or fn)
    return replace(chapter, paragraphs=tuple(p for p in paragraphs if p.sentences), heading=heading)


def prepare_book(job: Job) -> PreparedBook:
    cfg = job.config
    documents: list[Document] = []
    for path in job.input_files():
        try:
            display = str(path.relative_to(job.base))
        except ValueError:
            display = str(path)
        documents.append(
            read_manuscript(
                path,
                display_name=display,
                encoding=cfg.input.encoding,
                keep_front_matter=cfg.input.keep_front_matter,
                keep_notes=cfg.input.keep_notes,
                keep_heading_only=True,
                keep_gutenberg=cfg.input.keep_gutenberg,
            )
        )
    epubs = [p for p in job.input_files() if p.suffix.lower() == ".epub"]
    metadata = resolve_metadata(
        cfg,
        job_base=job.base,
        epubs=epubs,
        fallback_title=next((d.title for d in documents if d.title), None) or cfg.name,
        fallback_author=next((d.author for d in documents if d.author), None),
    )
    language = cfg.engine.language or metadata.language
    lexicon = Lexicon.from_config(cfg.text, base_dir=job.base)
    overrides = SpokenOverrides.load(overrides_path(job.path))

    def spoken(words: Sequence[Word], *, heading: bool) -> tuple[Word, ...]:
        out = extract_breaks(words)
        if cfg.text.normalize:
            out = normalize_words(out, language=language, in_heading=heading)
        return lexicon.apply(out)

    chapters: list[Chapter] = []
    for doc in documents:
        chapters.extend(doc.chapters)
    chapters, heading_only = apply_heading_only_rule(chapters, cfg.input.heading_only)
    chapters = select_chapters(chapters, cfg.input.chapters)
    chapters = [
        map_chapter_words(
            ch,
            lambda ws: spoken(ws, heading=False),
            lambda ws: spoken(ws, heading=True),
        )
        for ch in chapters
    ]
    if overrides.entries:  # a reviewer's decision wins over normalization and the lexicon
        chapters = [map_chapter_words(ch, overrides.for_source(ch.source)) for ch in chapters]
    # A chapter with a heading but no text (a part title page) has nothing to narrate on its own.
    chapters = [ch for ch in chapters if ch.paragraphs]
    chunks = chunk_document(chapters, max_chars=cfg.text.max_chars, read_titles=cfg.input.read_titles)
    return PreparedBook(
        title=metadata.title,
        author=metadata.author,
        language=language,
        documents=tuple(documents),
        chapters=tuple(chapters),
        chunks=tuple(chunks),
        lexicon_version=lexicon.version,
        metadata=metadata,
        heading_only=tuple(heading_only),
    )
