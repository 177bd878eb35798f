"""Render once: the book is built from the mastered chapters, not mastered a second time, and
still measures on target with an independent meter; a limiter that cannot act is skipped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio.encode import EncoderOptions
from pipeline.audio.loudness import Analyzer
from pipeline.audio.planning import ChainPlanner
from pipeline.audio.profiles import PROFILES
from pipeline.audio.render_pass import Chain, Processor
from pipeline.config import AudioConfig, load_job
from pipeline.runner import RunOptions, run_job
from tests.jobs import write_job
from tests.mastering_signals import ref_lufs, ref_true_peak_db
from tests.resume_support import short_book


def _measure(x: np.ndarray, rate: int) -> object:
    analyzer = Analyzer(rate)
    analyzer.add(x)
    return analyzer.result()


def test_a_limiter_that_cannot_act_is_skipped_and_changes_nothing(tmp_path: Path) -> None:
    rate = 24000
    t = np.arange(rate * 3) / rate
    x = (0.2 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))).astype(np.float32)
    src = tmp_path / "x.wav"
    sf.write(src, x, rate, subtype="FLOAT")
    source = _measure(x, rate)
    target = PROFILES["podcast"]
    planner = ChainPlanner(src, source, target, workdir=tmp_path, options=EncoderOptions())  # type: ignore[arg-type]
    quiet = planner.chain("wav")
    assert quiet.ceiling_db is None  # -16 LUFS leaves this signal's peaks far under -1.1 dBTP
    limited = Chain(quiet.gain_db, -1.1, quiet.room_tone_db)
    with_limiter, without = Processor(limited, rate), Processor(quiet, rate)
    a = np.concatenate([with_limiter.process(x), with_limiter.flush()])
    b = np.concatenate([without.process(x), without.flush()])
    assert np.array_equal(a, b) and with_limiter.max_reduction_db == 0.0


@pytest.mark.parametrize("profile", ["podcast", "audiobook"])
def test_the_book_is_its_mastered_chapters_joined(tmp_path: Path, profile: str) -> None:
    manuscript = tmp_path / "book.md"
    manuscript.write_text(short_book(chapters=2, paragraphs=2), encoding="utf-8")
    job_path = write_job(
        tmp_path, name="once", input={"files": [str(manuscript)]}, audio={"formats": ["wav"], "loudness": profile}
    )
    report = asyncio.run(run_job(load_job(job_path), RunOptions(quiet=True)))
    out = tmp_path / "out" / "once"
    [book_entry] = [a for a in report["outputs"]["audio"] if not a["path"].startswith("chapters")]
    book, rate = sf.read(out / book_entry["path"], dtype="float64")
    chapters = [sf.read(p, dtype="float64")[0] for p in sorted((out / "chapters").glob("*.wav"))]
    gap = round(AudioConfig().chapter_pause_ms * rate / 1000)
    assert len(book) == sum(len(c) for c in chapters) + gap
    scale = 10 ** (book_entry["gain_db"] / 20)
    lsb = 2.0 / 65536
    # Each chapter's stretch of the book is that chapter's mastered audio (16-bit rounding apart).
    assert np.max(np.abs(book[: len(chapters[0])] - chapters[0] * scale)) <= 2 * lsb
    assert np.max(np.abs(book[len(chapters[0]) + gap :] - chapters[1] * scale)) <= 2 * lsb
    between = book[len(chapters[0]) : len(chapters[0]) + gap]
    if profile == "audiobook":  # the gap holds room tone at its level, as the chapters' pauses do
        assert -77.0 < 10 * np.log10(np.mean(between**2)) < -73.0
    else:
        assert not between.any()
    target = PROFILES[profile]
    assert ref_true_peak_db(book) <= target.true_peak_db  # type: ignore[operator]
    if profile == "podcast":
        assert abs(ref_lufs(book, rate) - -16.0) <= 0.5
    else:
        assert abs(10 * np.log10(np.mean(book**2)) - -20.0) <= 0.5
    assert all(a["meets_profile"] for a in report["outputs"]["audio"]), json.dumps(report["outputs"]["audio"])
