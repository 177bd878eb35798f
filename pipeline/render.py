"""Render stage: synthesized chunks -> chapter and book audio, subtitles and alignment.

Per chapter: assemble (streaming, to a working file) and lay the words on the chapter's
timeline. Then, at once: the chapters are mastered and encoded on worker threads (two at a
time), while this thread writes the subtitles, alignment.json and dataset, which need only the
timelines. The whole book is built from the mastered chapters (each already at the level and
under the ceiling: render once, not twice), or, without chapter files, from the assembled ones
mastered as a whole. A chapter with a missing chunk is skipped (and named in the report); the
whole-book files need every chapter.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.align.alignment import alignment_document, document_file_spans
from pipeline.align.cues import build_cues, cue_stats
from pipeline.align.subtitles import compose_srt, compose_vtt, word_cues
from pipeline.align.timeline import chapter_timeline
from pipeline.audio.assemble import PauseSettings, assemble_chapter, join_files, ms_to_samples
from pipeline.audio.master import FileReport, MasteringTarget, Tags, master_file
from pipeline.audio.render_pass import RoomTone
from pipeline.cache import ChunkCache
from pipeline.config import JobConfig
from pipeline.dataset.export import export_dataset
from pipeline.dataset.quality import alignment_quality
from pipeline.errors import InputError, OutputError
from pipeline.fsutil import write_json_atomic, write_text_atomic
from pipeline.models import ChapterTimeline, Cue, SynthesizedChunk
from pipeline.prepare import PreparedBook

MASTERING_THREADS = 2  # chapters mastered at once


def slugify(text: str, *, limit: int = 48) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return (slug[:limit].rstrip("-")) or "untitled"


def chapter_stem(book: PreparedBook, index: int) -> str:
    """The file name of chapter ``index`` (0-based) without its extension: "01-title"."""
    width = max(2, len(str(len(book.chapters))))
    return f"{index + 1:0{width}d}-{slugify(book.chapters[index].title)}"


@dataclass(frozen=True, slots=True)
class AssembledChapter:
    raw: Path  # the assembled, unmastered float32 WAV in the working folder
    timeline: ChapterTimeline
    cues: list[Cue]
    frames: int  # samples in ``raw`` (mastering keeps the length)


@dataclass(slots=True)
class RenderResult:
    files: list[FileReport] = field(default_factory=list)
    subtitle_files: list[str] = field(default_factory=list)
    other_files: list[str] = field(default_factory=list)
    chapters_written: list[int] = field(default_factory=list)
    chapters_incomplete: list[int] = field(default_factory=list)
    # Assembled for the book, alignment and dataset, but their chapter files left as they were.
    chapters_kept: list[int] = field(default_factory=list)
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
        return chapter_stem(self.book, index)

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

    def render(
        self, done: Sequence[SynthesizedChunk], *, chapter_files: Collection[int] | None = None
    ) -> RenderResult:
        """``chapter_files`` limits which chapters' own files (audio, subtitles) are written, by
        0-based index; the others must already be on disk from a render of the same chunks. Every
        chapter is still assembled, since the book file, alignment and dataset need them all."""
        result = RenderResult()
        by_chapter: dict[int, list[SynthesizedChunk]] = {}
        for item in done:
            by_chapter.setdefault(item.chunk.chapter, []).append(item)
        self.work.mkdir(parents=True, exist_ok=True)
        assembled: dict[int, AssembledChapter] = {}
        style = self.cfg.outputs.subtitle_style
        all_cues: list[Cue] = []
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
            assembled[index] = AssembledChapter(raw, timeline, cues, layout.num_samples)
            if chapter_files is not None and index not in chapter_files:
                result.chapters_kept.append(index)
            result.chapters_written.append(index)
        result.cue_stats = cue_stats(all_cues, style)
        result.book_complete = not result.chapters_incomplete and bool(assembled)
        offsets_ms = self._book_offsets_ms(assembled) if result.book_complete else {}
        book_from_chapters = result.book_complete and self.cfg.outputs.book_file and self.cfg.outputs.chapter_files
        # Audio is mastered on worker threads (numpy, scipy and the encoders release the GIL),
        # while this thread writes every output that needs only the timelines.
        with ThreadPoolExecutor(max_workers=MASTERING_THREADS, thread_name_prefix="master") as pool:
            kept = set(result.chapters_kept)
            # A kept chapter's files stay as they are; when the book is built from mastered
            # chapters, it is mastered again into the working folder only (mastering is
            # deterministic: the same book as a full render).
            chapter_jobs = (
                [
                    pool.submit(self._master_chapter, i, book_from_chapters, i in kept)
                    for i in sorted(assembled)
                    if i not in kept or book_from_chapters
                ]
                if self.cfg.outputs.chapter_files
                else []
            )
            try:
                self._finish(assembled, offsets_ms, result)
            finally:
                reports = [job.result() for job in chapter_jobs]  # every worker done before cleanup
            for chapter_reports in reports:
                result.files.extend(chapter_reports)
            if result.book_complete and self.cfg.outputs.book_file:
                result.files.extend(self._master_book(assembled, offsets_ms, from_chapters=book_from_chapters))
        result.audio_seconds = sum(a.timeline.duration_ms for a in assembled.values()) / 1000
        shutil.rmtree(self.work, ignore_errors=True)
        return result

    def _finish(self, assembled: dict[int, AssembledChapter], offsets_ms: dict[int, int], result: RenderResult) -> None:
        """Subtitles, alignment.json, alignment quality, dataset and media overlays: everything
        but the mastered audio, which does not change any of them (its length is the source's)."""
        if self.cfg.outputs.chapter_files:
            for index in sorted(set(assembled) - set(result.chapters_kept)):
                a = assembled[index]
                self._write_subtitles(
                    self.out / "chapters" / self.chapter_stem(index), a.cues, a.timeline.words, result
                )
        if result.book_complete and self.cfg.outputs.book_file:
            order = sorted(assembled)
            cues = [cue.with_offset(offsets_ms[i]) for i in order for cue in assembled[i].cues]
            words = [w.with_offset(offsets_ms[i]) for i in order for w in assembled[i].timeline.words]
            self._write_subtitles(self.out / self.book_slug, cues, words, result)
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

    def _master_copy(self, index: int) -> Path:
        return self.work / f"{index:04d}.mastered.wav"

    def _master_chapter(self, index: int, keep_master: bool, scratch: bool = False) -> list[FileReport]:
        """Master chapter ``index`` into its chapter files; with ``scratch``, into the working
        folder only (for the master copy of a chapter whose files are kept), reporting nothing."""
        chapter = self.book.chapters[index]
        tags = Tags(
            title=chapter.title,
            author=self.book.author,
            album=self.book.title,
            track=index + 1,
            total_tracks=len(self.book.chapters),
            chapter_title=chapter.title,
        )
        reports = master_file(
            self.work / f"{index:04d}.wav",
            (self.work / "kept" if scratch else self.out / "chapters") / self.chapter_stem(index),
            target=self.target,
            formats=["wav"] if scratch else [f for f in self.cfg.audio.formats if f != "m4b"] or ["wav"],
            tags=tags,
            mp3_bitrate_kbps=self.cfg.audio.mp3_bitrate_kbps,
            master_copy=self._master_copy(index) if keep_master else None,
        )
        return [] if scratch else reports

    def _book_offsets_ms(self, assembled: dict[int, AssembledChapter]) -> dict[int, int]:
        """Where each chapter starts in the book (what ``join_files`` will make of them)."""
        gap = ms_to_samples(self.cfg.audio.chapter_pause_ms, self.rate)
        offsets_ms, frame = {}, 0
        for i in sorted(assembled):
            offsets_ms[i] = round(frame * 1000 / self.rate)
            frame += assembled[i].frames + gap
        return offsets_ms

    def _master_book(
        self, assembled: dict[int, AssembledChapter], offsets_ms: dict[int, int], *, from_chapters: bool
    ) -> list[FileReport]:
        """The whole book. Built from the mastered chapters when there are any: each is already
        at the level and under the ceiling, so the joined book needs gain alone (lossless) and
        is not mastered a second time; otherwise the assembled chapters are joined and mastered."""
        order = sorted(assembled)
        book_raw = self.work / "book.wav"
        tone = self.target.room_tone_db
        room_tone = RoomTone(tone) if from_chapters and tone is not None else None
        offsets = join_files(
            [self._master_copy(i) if from_chapters else assembled[i].raw for i in order],
            book_raw,
            gap_ms=self.cfg.audio.chapter_pause_ms,
            gap_fill=(lambda n: room_tone.add(np.zeros(n, dtype=np.float32))) if room_tone is not None else None,
        )
        if [round(off * 1000 / self.rate) for off in offsets] != [offsets_ms[i] for i in order]:
            raise OutputError(f"{book_raw}: the joined chapters do not start where their subtitles do")
        markers = [
            (self.book.chapters[i].title, offsets_ms[i], offsets_ms[i] + assembled[i].timeline.duration_ms)
            for i in order
        ]
        return master_file(
            book_raw,
            self.out / self.book_slug,
            target=self.target,
            formats=self.cfg.audio.formats,
            tags=Tags(title=self.book.title, author=self.book.author, album=self.book.title),
            mp3_bitrate_kbps=self.cfg.audio.mp3_bitrate_kbps,
            chapters=markers,
            premastered=from_chapters,
        )

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
