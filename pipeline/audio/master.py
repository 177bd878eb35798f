"""Mastering: loudness profiles, two-pass normalization per output file, delivery files.

``master_file`` takes one assembled float32 mono WAV (a chapter, or the whole book) and writes
it in every requested format:

1. measure the source in one streaming pass (loudness, RMS, true peak, noise floor);
2. choose one gain for the whole file from the profile (never per chunk, so levels never jump);
   when that gain would push peaks over the ceiling, the true-peak limiter will take some level
   off the loudest moments, so the gain is refined by running the limiter over the audio (or,
   for long files, over evenly spread excerpts) until the limited result lands on the target;
3. for each lossy format, encode and decode excerpts to learn how its codec moves level and
   peaks, and compensate (``planning``, ``calibrate``);
4. stream the source again through gain, room tone (audiobook), limiter and every encoder at
   once, the encoders on their own threads or ffmpeg processes;
5. decode and measure each written file; a format whose peak still went over the ceiling, or
   whose level is more than 0.2 dB off, is encoded again with the measured correction (at most
   twice).

The output has exactly the source's length (the limiter's lookahead is compensated), so word
timings computed before mastering stay valid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.audio.encode import FORMATS, M4B_HINT, EncoderOptions, Tags, decode, ffmpeg_path
from pipeline.audio.loudness import Analyzer, Measurement
from pipeline.audio.planning import ChainPlanner
from pipeline.audio.profiles import PROFILES, MasteringTarget, problems
from pipeline.audio.render_pass import MASTER_COPY, render, source_blocks
from pipeline.errors import OutputError

__all__ = ["PROFILES", "FileReport", "MasteringTarget", "Tags", "ffmpeg_path", "master_file"]

_RETRIES = 2  # encodes of one format beyond the first, when its decoded file missed


@dataclass(frozen=True)
class FileReport:
    """One written file as measured after encoding (decoded again, independently of the
    signal that went into the encoder)."""

    path: str
    format: str
    duration_s: float
    integrated_lufs: float
    rms_db: float
    true_peak_db: float
    sample_peak_db: float
    noise_floor_db: float
    meets_profile: bool
    problems: tuple[str, ...]
    profile: str = ""
    sample_rate: int = 0
    gain_db: float = 0.0
    limiter_max_db: float = 0.0  # deepest gain reduction the limiter applied

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: levels rounded to 0.01 dB, silence (-inf) as null."""

        def level(value: float) -> float | None:
            return round(value, 2) if math.isfinite(value) else None

        return {
            "path": self.path,
            "format": self.format,
            "profile": self.profile,
            "sample_rate": self.sample_rate,
            "duration_s": round(self.duration_s, 3),
            "integrated_lufs": level(self.integrated_lufs),
            "rms_db": level(self.rms_db),
            "true_peak_db": level(self.true_peak_db),
            "sample_peak_db": level(self.sample_peak_db),
            "noise_floor_db": level(self.noise_floor_db),
            "gain_db": round(self.gain_db, 2),
            "limiter_max_db": round(self.limiter_max_db, 2),
            "meets_profile": self.meets_profile,
            "problems": list(self.problems),
        }


def master_file(
    src: Path,
    dst_stem: Path,
    *,
    target: MasteringTarget,
    formats: Sequence[str],
    tags: Tags,
    mp3_bitrate_kbps: int = 192,
    chapters: Sequence[tuple[str, int, int]] = (),
    ffmpeg_encoders: bool = True,
    master_copy: Path | None = None,
    premastered: bool = False,
) -> list[FileReport]:
    """Master ``src`` (float32 mono WAV) to ``dst_stem.<fmt>`` for each format; one report each,
    in the order of ``formats``. ``chapters`` are (title, start_ms, end_ms) markers for M4B.
    ``ffmpeg_encoders=False`` keeps MP3 and Opus on libsndfile even when ffmpeg is installed.

    ``master_copy``: also write the lossless mastered signal there, as float32 WAV (what the
    book is built from). ``premastered``: ``src`` is such mastered audio, joined (the book from
    its chapters, room tone already in): lossless formats get gain alone, capped by the peaks,
    and no second room tone; lossy formats are limited under their own lower ceiling as usual."""
    wanted = _check_formats(formats, dst_stem)
    if premastered:
        target = replace(target, room_tone_db=None)
    source = _measure(src, None, target)
    try:
        dst_stem.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{dst_stem.parent}: cannot create output folder: {exc.strerror}") from None
    options = EncoderOptions(mp3_bitrate_kbps, ffmpeg_encoders)
    planner = ChainPlanner(src, source, target, workdir=dst_stem.parent, options=options, premastered=premastered)
    paths = {fmt: dst_stem.with_name(f"{dst_stem.name}.{fmt}") for fmt in wanted}
    limiting: dict[str, float] = {}
    measured: dict[str, Measurement] = {}
    pending = wanted
    for attempt in range(_RETRIES + 1):
        plan = {fmt: planner.chain(fmt) for fmt in pending}
        targets = dict(paths)
        if master_copy is not None and (attempt == 0 or "wav" in pending):
            plan[MASTER_COPY], targets[MASTER_COPY] = planner.chain("wav"), master_copy
        limiting.update(render(src, plan, targets, tags=tags, options=options, chapters=chapters))
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = pool.map(lambda fmt: _measure(paths[fmt], fmt, target), pending)
            measured.update(zip(pending, results, strict=True))
        if attempt < _RETRIES:
            pending = [fmt for fmt in pending if planner.correct(fmt, measured[fmt])]
        if not pending:
            break
    reports = []
    for fmt in wanted:
        m = measured[fmt]
        found = problems(m, target, source)
        reports.append(
            FileReport(
                str(paths[fmt]), fmt, m.duration_s, m.integrated_lufs, m.rms_db, m.true_peak_db,
                m.sample_peak_db, m.noise_floor_db, not found, tuple(found),
                profile=target.profile, sample_rate=m.sample_rate,
                gain_db=planner.chain(fmt).gain_db, limiter_max_db=limiting.get(fmt, 0.0),
            )
        )  # fmt: skip
    return reports


def _check_formats(formats: Sequence[str], dst_stem: Path) -> list[str]:
    wanted = list(dict.fromkeys(formats))
    if not wanted:
        raise OutputError(f"{dst_stem}: no audio format requested")
    for fmt in wanted:
        if fmt not in FORMATS:
            raise OutputError(f"{dst_stem}: unknown audio format {fmt!r} (known: {', '.join(FORMATS)})")
    if "m4b" in wanted and ffmpeg_path() is None:
        raise OutputError(f"{dst_stem}.m4b: {M4B_HINT}")
    return wanted


def _measure(path: Path, fmt: str | None, target: MasteringTarget) -> Measurement:
    """Measure the source (``fmt`` None) or a written file, streaming."""
    rate, blocks = source_blocks(path) if fmt is None else decode(path, fmt)
    analyzer = Analyzer(rate, head_ms=target.head_check_ms, tail_ms=target.tail_check_ms)
    for block in blocks:
        analyzer.add(block)
    return analyzer.result()
