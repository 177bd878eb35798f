"""Render stage: synthesized chunks -> chapter and book audio, subtitles and alignment.

Per chapter: assemble (streaming, to a working file), lay the words on the chapter's timeline,
master and encode each delivery format, write the chapter's subtitles. Then the whole book:
join the assembled chapters, master the result on its own, and write the book's subtitles and
alignment.json. A chapter with a missing chunk is skipped (and named in the report); the
whole-book files need every chapter.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.align.alignment import alignment_document, document_file_spans
from pipeline.align.cues import build_cues, cue_stats
from pipeline.align.subtitles import compose_srt, compose_vtt, word_cues
from pipeline.align.timeline import chapter_timeline
from pipeline.audio.assemble import PauseSettings, assemble_chapter, join_files
from pipeline.audio.master import FileReport, MasteringTarget, Tags, master_file
from pipeline.cache import ChunkCache
from pipeline.config import JobConfig
from pipeline.dataset.export import export_dataset
from pipeline.dataset.quality import alignment_quality
from pipeline.errors import InputError
from pipeline.fsutil import write_json_atomic, write_text_atomic
from pipeline.models import ChapterTimeline, Cue, SynthesizedChunk
from pipeline.prepare import PreparedBook


def slugify(text: str, *, limit: int = 48) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return (slug[:limit].rstrip("-")) or "untitled"


@dataclass(frozen=True, slots=True)
class AssembledChapter:
    raw: Path  # the assembled, unmastered float32 WAV in the working folder
    timeline: ChapterTimeline
    cues: list[Cue]


@dataclass(slots=True)
class RenderResult:
    files: list[FileReport] = field(default_factory=list)
    subtitle_files: list[str] = field(default_factory=list)
    other_files: list[str] = field(default_factory=list)
    chapters_written: list[int] = field(default_factory=list)
    chapters_incomplete: list[int] = field(default_factory=list)
    audio_seconds: float = 0.0
    cue_stats: dict[str, object] = field(default_factory=dict)
    alignment_quality: dict[str, object] = field(default_factory=dict)
    dataset: dict[str, object] | None = None
    book_complete: bool = False


class Renderer:
    def __init__(self, config: JobConfig, book: PreparedBook, cache: ChunkCache, output_dir: Path) -> None:
        self.cfg = config
        self.book = book
        self.cache = cache
        self.out = output_dir
        self.work = output_dir / ".narrate-work"
        self.target = MasteringTarget.from_config(config.audio)
        self.pauses = PauseSettings.from_config(config.audio, head_ms=self.target.head_ms, tail_ms=self.target.tail_ms)
        self.rate = config.engine.sample_rate
        self.book_slug = slugify(book.title)

    def _load(self, item: SynthesizedChunk) -> np.ndarray:
        audio = self.cache.get(item.cache_key, need_exact_timings=False)
        if audio is None:
            raise InputError(f"chunk {item.chunk.id}: its audio vanished from the cache during the run")
        return audio.samples

    def chapter_stem(self, index: int) -> str:
        width = max(2, len(str(len(self.book.chapters))))
        return f"{index + 1:0{width}d}-{slugify(self.book.chapters[index].title)}"

    def _write_subtitles(self, stem: Path, cues: Sequence[Cue], timeline_words: Sequence, result: RenderResult) -> None:
        outputs = self.cfg.outputs
        style = outputs.subtitle_style
        if "srt" in outputs.subtitles:
            write_text_atomic(stem.with_suffix(".srt"), compose_srt(cues))
            result.subtitle_files.append(str(stem.with_suffix(".srt")))
            if style.word_srt:
                path = stem.parent / f"{stem.name}.words.srt"
                write_text_atomic(path, compose_srt(word_cues(timeline_words)))
                result.subtitle_files.append(str(path))
        if "vtt" in outputs.subtitles:
            write_text_atomic(stem.with_suffix(".vtt"), compose_vtt(cues, karaoke=style.karaoke_vtt))
            result.subtitle_files.append(str(stem.with_suffix(".vtt")))

    def render(self, done: Sequence[SynthesizedChunk]) -> RenderResult:
        result = RenderResult()
        by_chapter: dict[int, list[SynthesizedChunk]] = {}
        for item in done:
            by_chapter.setdefault(item.chunk.chapter, []).append(item)
        self.work.mkdir(parents=True, exist_ok=True)
        assembled: dict[int, AssembledChapter] = {}
        style = self.cfg.outputs.subtitle_style
        all_cues: list[Cue] = []
        chapter_dir = self.out / "chapters"
        n_chapters = len(self.book.chapters)
        for index, chapter in enumerate(self.book.chapters):
            expected = self.book.chunks_of(index)
            items = by_chapter.get(index, [])
            if len(items) != len(expected) or not expected:
                result.chapters_incomplete.append(index)
                continue
            raw = self.work / f"{index:04d}.wav"
            layout = assemble_chapter(items, self._load, raw, pauses=self.pauses, sample_rate=self.rate)
            timeline = chapter_timeline(items, layout, title=chapter.title, source=chapter.source)
            cues = list(build_cues(timeline, style))
            all_cues.extend(cues)
            assembled[index] = AssembledChapter(raw, timeline, cues)
            if self.cfg.outputs.chapter_files:
                stem = chapter_dir / self.chapter_stem(index)
                tags = Tags(
                    title=chapter.title,
                    author=self.book.author,
                    album=self.book.title,
                    track=index + 1,
                    total_tracks=n_chapters,
                    chapter_title=chapter.title,
                )
                result.files.extend(
                    master_file(
                        raw,
                        stem,
                        target=self.target,
                        formats=[f for f in self.cfg.audio.formats if f != "m4b"] or ["wav"],
                        tags=tags,
                        mp3_bitrate_kbps=self.cfg.audio.mp3_bitrate_kbps,
                    )
                )
                self._write_subtitles(stem, cues, timeline.words, result)
            result.chapters_written.append(index)
        result.cue_stats = cue_stats(all_cues, style)
        result.book_complete = not result.chapters_incomplete and bool(assembled)
        offsets_ms = self._render_book(assembled, result) if result.book_complete else {}
        if self.cfg.outputs.alignment and assembled:
            doc = alignment_document(
                [(a.timeline, offsets_ms.get(i, 0)) for i, a in assembled.items()],
                job_name=self.cfg.name,
                sample_rate=self.rate,
                audio_files={i: f"chapters/{self.chapter_stem(i)}.{self.cfg.audio.formats[0]}" for i in assembled},
                book_file=f"{self.book_slug}.{self.cfg.audio.formats[0]}" if result.book_complete else None,
                file_span=document_file_spans(self.book.documents),  # Markdown: offsets into the .md file
            )
            write_json_atomic(self.out / "alignment.json", doc)
            result.other_files.append(str(self.out / "alignment.json"))
        if assembled:
            pairs = [(a.timeline, a.raw) for _, a in sorted(assembled.items())]
            result.alignment_quality = alignment_quality(pairs)
            if self.cfg.outputs.dataset is not None:
                result.dataset = export_dataset(
                    pairs,
                    self.cfg.outputs.dataset,
                    self.out / "dataset",
                    language=self.book.language,
                    split_seed_key=self.cfg.name,
                )
        if self.cfg.outputs.media_overlays and assembled:
            self._write_media_overlays(assembled, result)
        result.audio_seconds = sum(a.timeline.duration_ms for a in assembled.values()) / 1000
        shutil.rmtree(self.work, ignore_errors=True)
        return result

    def _render_book(self, assembled: dict[int, AssembledChapter], result: RenderResult) -> dict[int, int]:
        order = sorted(assembled)
        gap_ms = self.cfg.audio.chapter_pause_ms
        book_raw = self.work / "book.wav"
        offsets = join_files([assembled[i].raw for i in order], book_raw, gap_ms=gap_ms)
        offsets_ms = {i: round(off * 1000 / self.rate) for i, off in zip(order, offsets, strict=True)}
        if not self.cfg.outputs.book_file:
            return offsets_ms
        markers = [
            (self.book.chapters[i].title, offsets_ms[i], offsets_ms[i] + assembled[i].timeline.duration_ms)
            for i in order
        ]
        stem = self.out / self.book_slug
        tags = Tags(title=self.book.title, author=self.book.author, album=self.book.title)
        result.files.extend(
            master_file(
                book_raw,
                stem,
                target=self.target,
                formats=self.cfg.audio.formats,
                tags=tags,
                mp3_bitrate_kbps=self.cfg.audio.mp3_bitrate_kbps,
                chapters=markers,
            )
        )
        cues = [cue.with_offset(offsets_ms[i]) for i in order for cue in assembled[i].cues]
        words = [w.with_offset(offsets_ms[i]) for i in order for w in assembled[i].timeline.words]
        self._write_subtitles(stem, cues, words, result)
        return offsets_ms

    def _chapter_audio_name(self, index: int) -> str:
        # EPUB reading systems play MP3 and AAC; WAV is not an EPUB core media type.
        formats = self.cfg.audio.formats
        ext = "mp3" if "mp3" in formats else next((f for f in formats if f != "m4b"), "wav")
        return f"chapters/{self.chapter_stem(index)}.{ext}"

    def _write_media_overlays(self, assembled: dict[int, AssembledChapter], result: RenderResult) -> None:
        from pipeline.align.smil import chapter_shape, media_overlay_files, write_media_overlays

        order = sorted(assembled)
        files = media_overlay_files(
            [assembled[i].timeline for i in order],
            audio_files={i: self._chapter_audio_name(i) for i in order},
            title=self.book.title,
            identifier=f"urn:narrate:{self.cfg.name}",
            language=self.book.language or "en",
            shapes={i: chapter_shape(self.book.chapters[i]) for i in order},
        )
        result.other_files.extend(str(p) for p in write_media_overlays(self.out, files))
