"""How accurate are the word times in alignment.json, measured independently of our arithmetic?

Runs a manuscript through the real stages (text preparation, the local espeak-ng engine or,
with ``--engine piper``, the Piper voice, the
render stage with its assembly, mastering, subtitles and alignment.json; no Prefect) and then
finds out, for every word, when it really starts in the chapter file alignment.json points at,
without using any of our timing code:

1. where each chunk's audio sits in the mastered chapter file: cross-correlation of the chunk's
   raw engine audio (from the cache) against the chapter, searched in order from where the
   previous chunk matched (so assembly's offsets and trims are never consulted);
2. where each word starts inside its chunk: the PocketSphinx forced aligner (its bundled US
   English acoustic model and dictionary; nothing from espeak-ng's word events or our
   realignment) on the chunk's raw audio at 16 kHz.

Reference start = chunk position + aligner start. It also reports the two halves on their own
(stitching: chunk position + the engine's own chunk-relative time; engine: the engine's time
against the aligner's), the share of subtitle cues within the style limits (``cue_stats``),
and the alignment quality check (words whose span holds speech).

    .venv/bin/python -m bench.alignment_accuracy [--alice] [--manuscript PATH] [--engine local|piper] [--no-append]

Prints the figures and appends them to bench/RESULTS.md with the date and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml
from scipy.signal import correlate, resample_poly

from bench.sphinx_align import SphinxAligner
from pipeline.cache import ChunkCache
from pipeline.config import load_job
from pipeline.dataset.quality import alignment_quality
from pipeline.models import ChapterTimeline, SynthesizedChunk, TimedWord, Word
from pipeline.prepare import prepare_book
from pipeline.render import Renderer
from pipeline.synthesis import synthesize_all
from pipeline.tts.factory import make_engine

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "data" / "manuscripts" / "the-lighthouse-keepers-ledger.md"
ALICE = REPO.parent / "shared" / "corpus" / "alice.txt"  # the shared folder beside the repo
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_MIN_MATCH = 0.9  # normalized correlation below this: the chunk was not found, leave it out
# Where to look for a chunk: from a little before the end of the previous one's raw audio
# (assembly trims the silence at both ends, so the next chunk can start earlier than that) to
# well past the longest pause assembly inserts.
_SEARCH_BEFORE_S = 2.0
_SEARCH_AFTER_S = 8.0


@dataclass(slots=True)
class WordErrors:
    """Per word, ms: alignment.json minus the reference, and the two halves."""

    total: list[int]
    stitching: list[int]
    engine: list[int]


ENGINES = {
    "local": {"kind": "local", "voice": "en-us", "sample_rate": 24000},
    "piper": {"kind": "piper", "voice": "en_US-joe-medium", "sample_rate": 22050},
}


def run_book(
    manuscript: Path, work: Path, cache_dir: Path, engine: str = "local"
) -> tuple[list[SynthesizedChunk], dict[str, Any]]:
    """The real stages up to the finished outputs in ``work/out``: (chunks, what render made)."""
    work.mkdir(parents=True, exist_ok=True)
    job_path = work / "job.yaml"
    job_path.write_text(
        yaml.safe_dump(
            {
                "name": "accuracy",
                "input": {"files": [str(manuscript)]},
                "engine": ENGINES[engine],
                "audio": {"formats": ["wav"], "loudness": "audiobook"},
                "outputs": {"subtitles": ["srt"], "alignment": True, "book_file": False},
                "output_dir": str(work / "out"),
                "cache_dir": str(cache_dir),
            }
        ),
        encoding="utf-8",
    )
    job = load_job(job_path)
    book = prepare_book(job)
    cache = ChunkCache(job.cache_dir)
    synthesis = asyncio.run(
        synthesize_all(book.chunks, engine=make_engine(job.config), cache=cache, need_timings=True, workers=2)
    )
    if synthesis.failures or len(synthesis.chunks) != len(book.chunks):
        raise RuntimeError(f"{len(synthesis.failures)} chunk(s) failed to synthesize")
    render = Renderer(job.config, book, cache, job.output_dir).render(synthesis.chunks)
    return synthesis.chunks, {"cue_stats": render.cue_stats, "out": job.output_dir, "cache": cache}


def _read(path: Path, start: int, frames: int) -> np.ndarray:
    with sf.SoundFile(str(path)) as source:
        source.seek(max(0, min(start, source.frames)))
        data: np.ndarray = source.read(frames, dtype="float64", always_2d=True)[:, 0]
        return data


def locate(chapter_file: Path, chunk: np.ndarray, cursor: int, rate: int) -> tuple[int, float]:
    """(sample of the chapter file where the chunk's sample 0 falls, normalized correlation),
    searching from ``cursor`` onwards."""
    start = max(0, cursor - round(_SEARCH_BEFORE_S * rate))
    window = _read(chapter_file, start, len(chunk) + round((_SEARCH_BEFORE_S + _SEARCH_AFTER_S) * rate))
    if len(window) < len(chunk):
        window = np.concatenate([window, np.zeros(len(chunk) - len(window))])
    scores = correlate(window, chunk, mode="valid", method="fft")
    lag = int(np.argmax(scores))
    segment = window[lag : lag + len(chunk)]
    norm = float(np.linalg.norm(segment) * np.linalg.norm(chunk))
    return start + lag, float(scores[lag] / norm) if norm else 0.0


def measure_chapter(
    chapter: dict[str, Any],
    items: list[SynthesizedChunk],
    cache: ChunkCache,
    out: Path,
    aligner: SphinxAligner,
    errors: WordErrors,
    counts: dict[str, int],
) -> None:
    chapter_file = out / chapter["audio_file"]
    rate = sf.info(str(chapter_file)).samplerate
    json_words: Iterator[dict[str, Any]] = iter(chapter["words"])
    cursor = 0
    for item in sorted(items, key=lambda it: it.chunk.seq):
        audio = cache.get(item.cache_key, need_exact_timings=False)
        assert audio is not None and audio.sample_rate == rate
        raw = audio.samples.astype(np.float64) / 32768.0
        position, score = locate(chapter_file, raw, cursor, rate)
        placed = [next(json_words) for _ in item.chunk.words]
        counts["chunks"] += 1
        if score < _MIN_MATCH:
            counts["chunks_not_found"] += 1
            continue
        cursor = position + len(raw)
        pcm16k = resample_poly(raw, 16000, rate)  # the acoustic model's rate
        starts = aligner.word_starts_ms([w.spoken for w in item.chunk.words], pcm16k)
        if starts is None:
            counts["chunks_not_aligned"] += 1
            continue
        offset_ms = position * 1000 / rate
        for word, timing, entry, heard in zip(item.chunk.words, item.timings, placed, starts, strict=True):
            assert entry["text"] == word.text, f"alignment.json out of step with chunk {item.chunk.id}"
            if heard is None:
                continue
            errors.total.append(round(entry["start_ms"] - (offset_ms + heard)))
            errors.stitching.append(round(entry["start_ms"] - (offset_ms + timing.start_ms)))
            errors.engine.append(round(timing.start_ms - heard))


def _stats(values: list[int]) -> dict[str, float]:
    a = np.abs(np.asarray(values, dtype=float))
    if a.size == 0:
        return {"words": 0}
    return {
        "words": int(a.size),
        "median_abs_ms": float(np.median(a)),
        "p90_abs_ms": float(np.percentile(a, 90)),
        "p99_abs_ms": float(np.percentile(a, 99)),
        "mean_signed_ms": round(float(np.mean(values)), 2),
        "within_20ms": round(float(np.mean(a <= 20)), 4),
    }


def _timelines(doc: dict[str, Any], out: Path) -> list[tuple[ChapterTimeline, Path]]:
    """alignment.json read back as timelines (for the energy check on the delivered files)."""
    result = []
    for ch in doc["chapters"]:
        words = tuple(
            TimedWord(Word(w["text"], w["char_start"], w["char_end"]), ch["index"], w["source"],
                      w["start_ms"], w["end_ms"], w["sentence"])
            for w in ch["words"]
        )  # fmt: skip
        timeline = ChapterTimeline(ch["index"], ch["title"], ch["source"], ch["duration_ms"], words)
        result.append((timeline, out / ch["audio_file"]))
    return result


def measure(manuscript: Path, work: Path, cache_dir: Path, engine: str = "local") -> dict[str, Any]:
    """Every figure for one manuscript (see the module docstring)."""
    started = time.perf_counter()
    load = os.getloadavg()[0]
    chunks, render = run_book(manuscript, work, cache_dir, engine)
    built = time.perf_counter()
    out: Path = render["out"]
    doc = json.loads((out / "alignment.json").read_text(encoding="utf-8"))
    errors = WordErrors([], [], [])
    counts = {"chunks": 0, "chunks_not_found": 0, "chunks_not_aligned": 0}
    aligner = SphinxAligner()
    for chapter in doc["chapters"]:
        items = [c for c in chunks if c.chunk.chapter == chapter["index"]]
        measure_chapter(chapter, items, render["cache"], out, aligner, errors, counts)
    return {
        "manuscript": manuscript.name,
        "engine": engine,
        "words": sum(len(c["words"]) for c in doc["chapters"]),
        "audio_s": round(sum(c["duration_ms"] for c in doc["chapters"]) / 1000, 1),
        **counts,
        "word_start_error": _stats(errors.total),
        "stitching_only": _stats(errors.stitching),
        "engine_vs_aligner": _stats(errors.engine),
        "cues": render["cue_stats"],
        "energy_check": {k: v for k, v in alignment_quality(_timelines(doc, out)).items() if k != "failing_examples"},
        "aligner_words_without_pronunciation": aligner.unknown_words,
        "load_at_start": round(load, 2),
        "build_s": round(built - started, 1),
        "measure_s": round(time.perf_counter() - built, 1),
    }


def _markdown(result: dict[str, Any], command: str) -> str:
    machine = (
        f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores, load {result['load_at_start']}, "
        f"Python {platform.python_version()})"
    )
    e, s, g, c = result["word_start_error"], result["stitching_only"], result["engine_vs_aligner"], result["cues"]
    lines = [
        f"## alignment_accuracy: {result['manuscript']} ({result['engine']} engine), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}",
        "",
        f"{result['words']} words, {result['audio_s']} s of audio, {result['chunks']} chunks "
        f"({result['chunks_not_found']} not found, {result['chunks_not_aligned']} not aligned); "
        f"build {result['build_s']} s, measure {result['measure_s']} s. Reproduce: `{command}`",
        "",
        "| word starts in alignment.json vs | words | median abs | p90 abs | p99 abs | mean signed | within 20 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, st in (("xcorr + PocketSphinx (independent)", e), ("xcorr + engine times (stitching)", s),
                      ("engine vs PocketSphinx (in chunk)", g)):  # fmt: skip
        lines.append(
            f"| {label} | {st['words']} | {st['median_abs_ms']:.0f} ms | {st['p90_abs_ms']:.0f} ms | "
            f"{st['p99_abs_ms']:.0f} ms | {st['mean_signed_ms']:+.1f} ms | {st['within_20ms']:.1%} |"
        )
    lines += [
        "",
        f"Subtitle cues within the style limits: {c['within_limits']}/{c['cues']} "
        f"({c['fraction_within_limits']:.2%}); broken: {c['broken']}.",
        f"Energy check (word spans holding speech): {result['energy_check']['fraction_passing']:.2%} "
        f"of {result['energy_check']['words_checked']} words.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alice", action="store_true", help=f"also measure {ALICE}")
    parser.add_argument("--no-append", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--cache", type=Path, default=REPO / ".narrate-cache", help="chunk cache (default: the repo's)")
    parser.add_argument("--manuscript", type=Path, action="append", help="measure this file instead of the demo")
    parser.add_argument("--engine", choices=sorted(ENGINES), default="local")
    args = parser.parse_args()
    books = [p.resolve() for p in args.manuscript or [DEMO]] + ([ALICE] if args.alice else [])
    command = " ".join([".venv/bin/python -m bench.alignment_accuracy", *sys.argv[1:]])
    for manuscript in books:
        with tempfile.TemporaryDirectory(prefix="narrate-accuracy-") as tmp:
            result = measure(manuscript, Path(tmp), args.cache, args.engine)
        text = _markdown(result, command)
        print(text)
        print(json.dumps(result, indent=1))
        if not args.no_append:
            fresh = not RESULTS.exists() or RESULTS.stat().st_size == 0
            with RESULTS.open("a", encoding="utf-8") as fh:
                fh.write(("# Benchmark results\n\n" if fresh else "\n") + text)


if __name__ == "__main__":
    main()
