"""End to end: the demo manuscript through a real Prefect flow and the real local engine, with
every output checked by an independent parser (srt, webvtt-py, soundfile)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt

from tests.conftest import DEMO_MANUSCRIPT
from tests.jobs import write_job

pytestmark = pytest.mark.slow


def spoken_manuscript_words() -> list[str]:
    """The words a listener should hear, derived from the Markdown by hand-rules independent of
    our reader: chapter headings are read (without the '#'), the book title line is not, and
    scene-break lines are silent."""
    words: list[str] = []
    for line in DEMO_MANUSCRIPT.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("# ") or re.fullmatch(r"(\*\s*){3,}|#|-{3,}", stripped):
            continue
        line_words = re.sub(r"^#+\s*", "", stripped).split()
        words.extend(re.sub(r"[*_]", "", w) for w in line_words)  # emphasis markers are not text
    return words


def run_flow(job_path: Path, **params: Any) -> Any:
    from pipeline.flows import narrate_flow

    return asyncio.run(narrate_flow(job_path=str(job_path), return_state=True, **params))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("demo")
    job = write_job(folder, name="demo", title="The Lighthouse Keeper's Ledger")
    state = run_flow(job)
    assert state.is_completed(), state.message
    out = folder / "out" / "demo"
    report = json.loads((out / "report.json").read_text())
    return {"out": out, "report": report, "job": job, "folder": folder}


def _book(demo: dict[str, Any], ext: str) -> Path:
    paths = list(demo["out"].glob(f"*.{ext}"))
    assert len(paths) == 1, paths
    return paths[0]


def test_all_outputs_exist(demo: dict[str, Any]) -> None:
    out = demo["out"]
    chapters = sorted((out / "chapters").glob("*.wav"))
    assert len(chapters) == 3
    for wav in chapters:
        assert wav.with_suffix(".srt").is_file() and wav.with_suffix(".vtt").is_file()
    for ext in ("wav", "srt", "vtt"):
        _book(demo, ext)
    assert (out / "alignment.json").is_file()
    report = demo["report"]
    assert report["chunks_total"] == report["chunks_synthesized"] + report["chunks_from_cache"]
    assert report["chunks_failed"] == 0
    assert report["audio_seconds"] > 0 and report["wall_seconds"] > 0
    assert not list(out.rglob(".tmp*")) and not (out / ".narrate-work").exists()


def test_book_subtitles_hold_every_word_in_order(demo: dict[str, Any]) -> None:
    expected = spoken_manuscript_words()
    cues = list(srt.parse(_book(demo, "srt").read_text(encoding="utf-8")))
    assert [w for c in cues for w in c.content.split()] == expected
    vtt = webvtt.read(str(_book(demo, "vtt")))
    assert [w for c in vtt for w in c.text.split()] == expected


def test_cue_times_monotonic_and_inside_audio(demo: dict[str, Any]) -> None:
    duration = sf.info(str(_book(demo, "wav"))).duration
    cues = list(srt.parse(_book(demo, "srt").read_text(encoding="utf-8")))
    previous_end = 0.0
    for cue in cues:
        start, end = cue.start.total_seconds(), cue.end.total_seconds()
        assert previous_end <= start < end <= duration + 1e-3
        previous_end = end
    for chapter_srt in sorted((demo["out"] / "chapters").glob("*.srt")):
        chapter_duration = sf.info(str(chapter_srt.with_suffix(".wav"))).duration
        for cue in srt.parse(chapter_srt.read_text(encoding="utf-8")):
            assert cue.end.total_seconds() <= chapter_duration + 1e-3


def _rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def test_word_times_point_at_speech(demo: dict[str, Any]) -> None:
    audio, rate = sf.read(str(_book(demo, "wav")), dtype="float32")
    doc = json.loads((demo["out"] / "alignment.json").read_text())
    words = [w for ch in doc["chapters"] for w in ch["words"]]
    assert len(words) == len(spoken_manuscript_words())
    speech_level = _rms_db(audio[np.abs(audio) > 1e-4])
    passed = 0
    for w in words:
        a, b = int(w["book_start_ms"] * rate / 1000), int(w["book_end_ms"] * rate / 1000)
        assert b > a, w
        if _rms_db(audio[a:b]) > speech_level - 20:
            passed += 1
    assert passed / len(words) >= 0.98
    # and the pauses between sentences really are quiet: the 150 ms before each chapter's first word
    for ch in doc["chapters"]:
        first = ch["words"][0]
        a = int(first["book_start_ms"] * rate / 1000)
        assert _rms_db(audio[max(0, a - int(0.15 * rate)) : a]) < speech_level - 30


def test_chapter_files_add_up_to_the_book(demo: dict[str, Any]) -> None:
    from pipeline.config import AudioConfig

    book = sf.info(str(_book(demo, "wav")))
    chapters = [sf.info(str(p)) for p in sorted((demo["out"] / "chapters").glob("*.wav"))]
    gap = round(AudioConfig().chapter_pause_ms * book.samplerate / 1000)
    assert sum(c.frames for c in chapters) + gap * (len(chapters) - 1) == book.frames
    assert all(c.samplerate == book.samplerate == 24000 for c in chapters)


def test_speech_is_plausible_narration(demo: dict[str, Any]) -> None:
    """Listen-check by measurement: pace near 150 wpm, no long silences, no clipping."""
    n_words = len(spoken_manuscript_words())
    for wav in sorted((demo["out"] / "chapters").glob("*.wav")):
        audio, rate = sf.read(str(wav), dtype="float32")
        assert np.max(np.abs(audio)) < 0.99  # no clipping
        frame = int(0.05 * rate)
        n = len(audio) // frame
        levels = 20 * np.log10(np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1)) + 1e-9)
        loud = np.flatnonzero(levels > levels.max() - 45)
        inner = levels[loud[0] : loud[-1] + 1] < levels.max() - 45
        longest, run = 0, 0
        for silent in inner:
            run = run + 1 if silent else 0
            longest = max(longest, run)
        assert longest * 0.05 < 2.0, f"{wav.name}: {longest * 0.05:.2f} s of silence inside speech"
    book_minutes = sf.info(str(_book(demo, "wav"))).duration / 60
    assert 110 <= n_words / book_minutes <= 210


def test_rerun_uses_the_cache(demo: dict[str, Any]) -> None:
    before = _book(demo, "wav").read_bytes()
    state = run_flow(demo["job"])
    assert state.is_completed()
    report = json.loads((demo["out"] / "report.json").read_text())
    assert report["chunks_synthesized"] == 0
    assert report["chunks_from_cache"] == report["chunks_total"]
    assert _book(demo, "wav").read_bytes() == before  # same audio, sample for sample


def test_preview_renders_the_opening_of_each_chapter(demo: dict[str, Any]) -> None:
    state = run_flow(demo["job"], preview_seconds=6)
    assert state.is_completed(), state.message
    preview = demo["out"] / "preview"
    full = sorted((demo["out"] / "chapters").glob("*.wav"))
    short = sorted((preview / "chapters").glob("*.wav"))
    assert [p.name for p in short] == [p.name for p in full]
    for a, b in zip(full, short, strict=True):
        assert 5 < sf.info(str(b)).duration < sf.info(str(a)).duration / 2
    report = json.loads((preview / "report.json").read_text())
    assert report["chunks_synthesized"] == 0  # the opening chunks are already in the cache
