"""Speech dataset export: chapter audio + word timeline -> clips + LJSpeech/audiofolder/NeMo.

For each chapter the words are cut into clips (``clips.py``), each clip's slice of the chapter
audio is read (seeking, never the whole chapter), resampled to the dataset rate, scaled by one
peak-safe gain for the whole book (the dataset profile keeps the engine's dynamics) and written
as mono 16-bit PCM; then each format's manifests are written (``manifests.py`` shows the
layout). Every file is written atomically, clip ids are stable, and files a previous run left
in a format's folder that this run did not write are removed, so manifests and audio always
match one to one.

The split holds out whole chapters, chosen by a hash of the job's key, the seed and the chapter,
so no sentence of a validation chapter is ever heard in training and a rerun picks the same
chapters.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import DatasetConfig, DatasetFormat, DatasetSplit
from pipeline.dataset.audio import (
    duration_ms,
    peak_level,
    peak_safe_gain,
    place_copy,
    read_slice,
    to_pcm16,
    write_wav16,
)
from pipeline.dataset.clips import ClipPlan, choose_clips
from pipeline.dataset.manifests import TRAIN, VALIDATION, ClipRecord, audio_path, manifest_files
from pipeline.errors import InputError, OutputError
from pipeline.fsutil import write_text_atomic
from pipeline.models import ChapterTimeline
from pipeline.text.normalize import normalize_text

_EXAMPLES = 10  # skipped spans listed in the summary
# Names of the files an export writes (clips, their crash leftovers, manifests): only these
# are ever removed as stale.
_OURS = re.compile(r".*\.wav|metadata(_\w+)?\.csv|metadata\.jsonl|(\w+_)?manifest\.jsonl")
_LENGTH_TOLERANCE_MS = 5  # ms rounding between a timeline and its audio file


def validation_chapters(chapters: Sequence[ChapterTimeline], split: DatasetSplit | None, seed_key: str) -> set[int]:
    """The chapter indexes held out for validation: ``round(validation * n)`` chapters, at
    least one when a fraction is asked for and there are two chapters or more, and never all
    of them; which ones is decided by a hash, so the choice is stable across runs."""
    if split is None or split.validation <= 0 or len(chapters) < 2:
        return set()
    count = min(max(1, round(split.validation * len(chapters))), len(chapters) - 1)

    def rank(timeline: ChapterTimeline) -> str:
        key = f"{seed_key}\0{split.seed}\0{timeline.chapter}\0{timeline.title}"
        return hashlib.sha256(key.encode()).hexdigest()

    return {t.chapter for t in sorted(chapters, key=rank)[:count]}


def _id_prefix(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "clip"


def _remove_stale(folder: Path, keep: set[Path]) -> None:
    """Delete audio and metadata files under ``folder`` that this run did not write (clips of
    an earlier run with other settings, a split no longer in use, temporaries of a crash),
    then folders left empty. Other files (a README the user added) stay."""
    if not folder.is_dir():
        return
    try:
        for path in sorted(folder.rglob("*"), reverse=True):
            if path.is_file() and _OURS.fullmatch(path.name) and path not in keep:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    except OSError as exc:
        raise OutputError(f"{folder}: cannot remove old dataset files ({exc.strerror or exc})") from None


def _check_inputs(chapters: Sequence[tuple[ChapterTimeline, Path]]) -> None:
    seen: set[int] = set()
    for timeline, path in chapters:
        if timeline.chapter in seen:
            raise InputError(f"{path}: chapter {timeline.chapter + 1} is given twice for the dataset")
        seen.add(timeline.chapter)
        length_ms = duration_ms(path)
        # A timeline from another chapter or run would cut clips in the wrong place.
        if timeline.words and timeline.words[-1].end_ms > length_ms + _LENGTH_TOLERANCE_MS:
            raise InputError(
                f"{path}: audio lasts {length_ms} ms but chapter {timeline.chapter + 1}'s words run to "
                f"{timeline.words[-1].end_ms} ms"
            )


def _summary(
    cfg: DatasetConfig,
    records: Sequence[ClipRecord],
    plans: dict[int, ClipPlan],
    chapters: Sequence[tuple[ChapterTimeline, Path]],
    held_out: set[int],
    gain: float,
) -> dict[str, Any]:
    seconds = sum(r.frames for r in records) / cfg.sample_rate
    splits: dict[str, dict[str, Any]] = {}
    for name in (TRAIN, VALIDATION) if cfg.split is not None else (TRAIN,):
        rows = [r for r in records if r.split == name]
        in_split = [t.chapter + 1 for t, _ in chapters if (t.chapter in held_out) == (name == VALIDATION)]
        splits[name] = {
            "clips": len(rows),
            "seconds": round(sum(r.frames for r in rows) / cfg.sample_rate, 3),
            "chapters": in_split,
        }
    skipped = [s for plan in plans.values() for s in plan.skipped]
    by_reason: dict[str, int] = {}
    for span in skipped:
        by_reason[span.reason] = by_reason.get(span.reason, 0) + span.words
    durations = [r.frames / cfg.sample_rate for r in records]
    return {
        "formats": list(cfg.formats),
        "sample_rate": cfg.sample_rate,
        "clips": len(records),
        "seconds": round(seconds, 3),
        "hours": round(seconds / 3600, 4),
        "shortest_clip_s": round(min(durations), 3) if durations else None,
        "longest_clip_s": round(max(durations), 3) if durations else None,
        "gain_db": round(20 * math.log10(gain), 2),
        "splits": splits,
        "words": {
            "total": sum(len(t.words) for t, _ in chapters),
            "in_clips": sum(c.last_word - c.first_word + 1 for p in plans.values() for c in p.clips),
            "skipped": sum(by_reason.values()),
            "skipped_by_reason": by_reason,
        },
        "skipped_examples": [
            {"chapter": s.chapter + 1, "reason": s.reason, "text": s.text if len(s.text) <= 80 else s.text[:77] + "..."}
            for s in skipped[:_EXAMPLES]
        ],
    }


def export_dataset(
    chapters: Sequence[tuple[ChapterTimeline, Path]],
    cfg: DatasetConfig,
    out_dir: Path,
    *,
    language: str | None,
    split_seed_key: str,
    id_prefix: str | None = None,
) -> dict[str, Any]:
    """Write the dataset for ``chapters`` (each chapter's timeline and its assembled audio, in
    the same time base) under ``out_dir`` and return a summary for report.json. Clip ids are
    ``<id_prefix>-c03-s0012`` (``id_prefix`` defaults to ``split_seed_key``, the job name).
    Raises InputError for unreadable chapter audio and OutputError for an unwritable folder."""
    _check_inputs(chapters)
    prefix = _id_prefix(id_prefix if id_prefix is not None else split_seed_key)
    # One millisecond inside the limits: converting a cut to samples rounds, twice.
    min_ms, max_ms = math.ceil(cfg.min_s * 1000) + 1, math.floor(cfg.max_s * 1000) - 1
    plans = {
        t.chapter: choose_clips(t, min_ms=min_ms, max_ms=max_ms, padding_ms=cfg.padding_ms, id_prefix=prefix)
        for t, _ in chapters
    }
    held_out = validation_chapters([t for t, _ in chapters], cfg.split, split_seed_key)
    gain = peak_safe_gain(peak_level(path for _, path in chapters))
    formats: list[DatasetFormat] = list(dict.fromkeys(cfg.formats))
    records: list[ClipRecord] = []
    written: set[Path] = set()
    for timeline, path in sorted(chapters, key=lambda item: item[0].chapter):
        for clip in plans[timeline.chapter].clips:
            samples, rate = read_slice(path, clip.start_ms, clip.end_ms)
            pcm = to_pcm16(samples, rate, cfg.sample_rate, gain=gain)
            record = ClipRecord(
                id=clip.id,
                split=VALIDATION if timeline.chapter in held_out else TRAIN,
                chapter=timeline.chapter,
                text=clip.text,
                normalized_text=normalize_text(clip.text, language=language),
                frames=len(pcm),
                sample_rate=cfg.sample_rate,
                speaker=cfg.speaker,
            )
            targets = [audio_path(out_dir, fmt, record) for fmt in formats]
            write_wav16(targets[0], pcm, cfg.sample_rate)
            for target in targets[1:]:
                place_copy(targets[0], target)
            written.update(targets)
            records.append(record)
    splits = [TRAIN, VALIDATION] if cfg.split is not None else None
    for fmt in formats:
        for path, text in manifest_files(out_dir, fmt, records, splits).items():
            write_text_atomic(path, text)
            written.add(path)
        _remove_stale(out_dir / fmt, written)
    return _summary(cfg, records, plans, chapters, held_out, gain)


def dataset_files(out_dir: Path) -> Iterable[Path]:
    """Every manifest and clip under a dataset folder (for listing outputs in a report)."""
    return sorted(p for p in out_dir.rglob("*") if p.is_file() and p.suffix in {".wav", ".csv", ".jsonl"})
