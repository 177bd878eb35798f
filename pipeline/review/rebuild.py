"""Re-render after a fix, touching only what the fix changed, with the stages `narrate run` uses.

A fix changes what some chunks say (a lexicon entry, a spoken-text override) or asks for a new
attempt at one chunk. The book is prepared again from the job (so the fix is read from the same
files a run reads), every chunk goes through ``synthesize_all`` (unchanged ones come from the
cache, changed ones are synthesized), and the renderer writes the files of the affected
chapters only; every chapter is still assembled, because the book file, subtitles, alignment
and dataset span them all. report.json is rebuilt by ``build_report``, keeping the measured
entries of the chapter files left as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.cache import ChunkCache
from pipeline.config import Job, load_job
from pipeline.errors import EngineError, NarrateError
from pipeline.fsutil import output_lock, write_json_atomic
from pipeline.prepare import PreparedBook, prepare_book
from pipeline.render import Renderer, chapter_stem
from pipeline.report import build_report
from pipeline.synthesis import SynthesisProgress, SynthesisResult, keys_for, synthesize_all
from pipeline.tts.base import Engine
from pipeline.tts.factory import make_engine, needs_timings, worker_count

STATE_DIR = ".narrate-review"  # inside the output folder: peaks cache and kept attempts

Step = Callable[[str, int, int], None]  # (what is happening, done, total)


@dataclass(slots=True)
class RebuildOutcome:
    resynthesized: list[str] = field(default_factory=list)  # chunk ids, book order
    chapters_rebuilt: list[int] = field(default_factory=list)  # 1-based
    attempt_kept: dict[str, str] = field(default_factory=dict)  # chunk id -> "new" | "previous"
    report: dict[str, Any] = field(default_factory=dict)


def _chapter_keys(book: PreparedBook, keys: list[str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for chunk, key in zip(book.chunks, keys, strict=True):
        out.setdefault(chunk.chapter, []).append(key)
    return out


def changed_chapters(before: PreparedBook, after: PreparedBook, engine: Engine) -> set[int]:
    """Chapters (0-based) whose chunks now say something else, compared by cache key."""
    old = _chapter_keys(before, keys_for(before.chunks, engine))
    new = _chapter_keys(after, keys_for(after.chunks, engine))
    titles_same = [c.title for c in before.chapters] == [c.title for c in after.chapters]
    if not titles_same:  # the manuscript itself changed shape: everything may have moved
        return set(new)
    return {i for i in new if new[i] != old.get(i)}


def _passes(samples: np.ndarray) -> bool:
    """Whether a new attempt may replace the previous one: some signal, not mostly clipped."""
    if samples.size == 0 or not np.any(samples):
        return False
    return float(np.mean(np.abs(samples.astype(np.int32)) >= 32767)) < 0.01


async def _new_attempt(
    job: Job, book: PreparedBook, chunk_id: str, engine: Engine, cache: ChunkCache, progress: Step
) -> str:
    """Synthesize one chunk again. The previous entry is kept in the output folder and put back
    when the new attempt does not pass. Returns which attempt the cache now holds."""
    chunk = next(c for c in book.chunks if c.id == chunk_id)
    key = keys_for([chunk], engine)[0]
    entry = cache.path_for(key)
    previous = entry.read_bytes() if entry.exists() else None
    if previous is not None:
        kept = job.output_dir / STATE_DIR / "attempts" / chunk_id / f"{time.time_ns()}.chunk"
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(previous)
    progress(f"synthesizing chunk {chunk_id} again", 0, 1)
    result = await synthesize_all(
        [chunk], engine=engine, cache=cache, need_timings=needs_timings(job.config), workers=1, fresh=True
    )
    if result.fatal is not None:
        raise result.fatal
    fresh = cache.get(key, need_exact_timings=False)
    if result.failures or fresh is None or not _passes(fresh.samples):
        if previous is None:
            reason = result.failures[0].reason if result.failures else "the new attempt is silent or clipped"
            raise EngineError(f"chunk {chunk_id}: {reason}")
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(entry.name + ".restore")
        tmp.write_bytes(previous)
        tmp.replace(entry)
        return "previous"
    return "new"


def _kept_outputs(old: dict[str, Any], stems: Collection[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The previous report's entries for chapter files that were left untouched."""
    outputs = old.get("outputs") or {}

    def ours(path: str) -> bool:
        name = Path(path).name
        return path.startswith("chapters/") and any(name.startswith(stem + ".") for stem in stems)

    audio = [a for a in outputs.get("audio", []) if ours(str(a.get("path", "")))]
    subtitles = [p for p in outputs.get("subtitles", []) if ours(str(p))]
    return audio, subtitles


async def rebuild(
    job_path: Path,
    *,
    before: PreparedBook | None = None,
    new_attempts: Collection[str] = (),
    progress: Step = lambda _what, _done, _total: None,
) -> RebuildOutcome:
    """Bring the outputs up to date with the job after a fix. ``before`` is the book as it was
    prepared before the fix (to find what changed); ``new_attempts`` are chunk ids to
    synthesize again even though their text did not change."""
    started = time.monotonic()
    job = load_job(job_path)
    book = await asyncio.to_thread(prepare_book, job)
    known = {c.id for c in book.chunks}
    for chunk_id in new_attempts:
        if chunk_id not in known:
            raise NarrateError(f"chunk {chunk_id}: no such chunk in {job.path}")
    cache = ChunkCache(job.cache_dir)
    engine = make_engine(job.config)
    outcome = RebuildOutcome()
    try:
        await engine.check()
        affected = changed_chapters(before, book, engine) if before is not None else set()
        for chunk_id in new_attempts:
            outcome.attempt_kept[chunk_id] = await _new_attempt(job, book, chunk_id, engine, cache, progress)
            affected.add(next(c.chapter for c in book.chunks if c.id == chunk_id))

        def on_progress(state: SynthesisProgress) -> None:
            progress("synthesizing changed chunks", state.done, state.total)

        synthesis = await synthesize_all(
            book.chunks,
            engine=engine,
            cache=cache,
            need_timings=needs_timings(job.config),
            workers=worker_count(job.config),
            progress=on_progress,
        )
        stats = getattr(engine, "stats", None)
        engine_stats = stats.as_dict() if stats is not None else {}
    finally:
        await engine.aclose()
    if synthesis.fatal is not None:
        raise synthesis.fatal
    # A new attempt was synthesized above, outside this pass: count it as synthesized here.
    synthesis = SynthesisResult(
        chunks=[replace(c, from_cache=False) if c.chunk.id in new_attempts else c for c in synthesis.chunks],
        failures=synthesis.failures,
    )
    outcome.resynthesized = [c.chunk.id for c in synthesis.chunks if not c.from_cache]
    fmt = next((f for f in job.config.audio.formats if f != "m4b"), "wav")
    for i in range(len(book.chapters)):  # a chapter never written before is written now
        if not (job.output_dir / "chapters" / f"{chapter_stem(book, i)}.{fmt}").exists():
            affected.add(i)
    if not affected and not outcome.resynthesized:
        progress("nothing changed", 1, 1)
        return outcome
    progress(f"rendering {len(affected)} chapter(s) and the book", 0, 1)
    report = await asyncio.to_thread(
        _render_and_report, job, book, cache, synthesis, affected, engine_stats, started, outcome.resynthesized
    )
    outcome.chapters_rebuilt = report["review"]["chapters_rebuilt"]
    outcome.report = report
    progress("done", 1, 1)
    return outcome


def _render_and_report(
    job: Job,
    book: PreparedBook,
    cache: ChunkCache,
    synthesis: SynthesisResult,
    affected: set[int],
    engine_stats: dict[str, Any],
    started: float,
    resynthesized: list[str],
) -> dict[str, Any]:
    renderer = Renderer(job.config, book, cache, job.output_dir)
    old_report = _read_json(job.output_dir / "report.json")
    with output_lock(job.output_dir):
        render = renderer.render(synthesis.chunks, chapter_files=affected)
        report = build_report(
            job,
            book,
            synthesis,
            render,
            engine_stats=engine_stats,
            output_dir=job.output_dir,
            wall_seconds=time.monotonic() - started,
        )
        _carry_over(report, old_report, [renderer.chapter_stem(i) for i in render.chapters_kept])
        report["review"] = {
            "chapters_rebuilt": sorted(i + 1 for i in affected if i in render.chapters_written),
            "chapters_kept": [i + 1 for i in render.chapters_kept],
            "resynthesized": resynthesized,
        }
        write_json_atomic(job.output_dir / "report.json", report)
    return report


def _carry_over(report: dict[str, Any], old: dict[str, Any], kept_stems: list[str]) -> None:
    audio, subtitles = _kept_outputs(old, kept_stems)
    report["outputs"]["audio"] = audio + report["outputs"]["audio"]
    report["outputs"]["subtitles"] = subtitles + report["outputs"]["subtitles"]
    if "qa" in old and "qa" not in report:  # the QA verdicts of the run stay the page's flags
        report["qa"] = old["qa"]


def _read_json(path: Path) -> dict[str, Any]:
    import json

    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return data
    return {}
