"""End to end with the piper engine: a small book through a real Prefect flow and the bundled
neural voice, every output read back by an independent parser (srt, webvtt-py, soundfile, csv),
the same checks the local engine's outputs pass."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt

from tests.jobs import write_job
from tests.test_cli_errors import assert_one_line_error, run_cli
from tests.test_e2e_demo import run_flow

pytestmark = pytest.mark.slow

# Short on purpose: the neural voice runs about 15x real time here, espeak-ng far faster.
BOOK = """\
# Two Nights

## One

The keeper climbed the stairs at dusk. "Somebody ought to be watching," she said.

## Two

The wind had dropped by morning, and the boats came home one by one.

## Three

She wrote 112 words in the ledger, then slept.
"""


def _words() -> list[str]:
    words: list[str] = []
    for line in BOOK.splitlines():
        if line.startswith("# ") or not line.strip():
            continue
        words.extend(re.sub(r"^#+\s*", "", line).split())
    return words


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("piper")
    manuscript = folder / "two-nights.md"
    manuscript.write_text(BOOK, encoding="utf-8")
    job = write_job(
        folder,
        name="pip",
        input={"files": [str(manuscript)]},
        engine={"kind": "piper", "voice": "en_US-joe-medium", "sample_rate": 22050},
        outputs={"dataset": {"formats": ["ljspeech"], "min_s": 0.5, "max_s": 8.0}},
    )
    state = run_flow(job)
    assert state.is_completed(), state.message
    out = folder / "out" / "pip"
    return {"out": out, "job": job, "report": json.loads((out / "report.json").read_text())}


def _one(out: Path, ext: str) -> Path:
    paths = list(out.glob(f"*.{ext}"))
    assert len(paths) == 1, paths
    return paths[0]


def test_subtitles_hold_every_word_in_order_inside_the_audio(book: dict[str, Any]) -> None:
    out = book["out"]
    wav = sf.info(str(_one(out, "wav")))
    assert wav.samplerate == 22050
    cues = list(srt.parse(_one(out, "srt").read_text(encoding="utf-8")))
    assert [w for c in cues for w in c.content.split()] == _words()
    assert [w for c in webvtt.read(str(_one(out, "vtt"))) for w in c.text.split()] == _words()
    previous = 0.0
    for cue in cues:
        assert previous <= cue.start.total_seconds() < cue.end.total_seconds() <= wav.duration + 1e-3
        previous = cue.end.total_seconds()
    assert len(sorted((out / "chapters").glob("*.wav"))) == 3


def test_word_times_point_at_speech(book: dict[str, Any]) -> None:
    audio, rate = sf.read(str(_one(book["out"], "wav")), dtype="float32")
    doc = json.loads((book["out"] / "alignment.json").read_text())
    words = [w for ch in doc["chapters"] for w in ch["words"]]
    assert [w["text"] for w in words] == _words()
    speech = np.abs(audio) > 1e-4
    level = 20 * np.log10(np.sqrt(np.mean(audio[speech] ** 2)))
    for w in words:
        a, b = int(w["book_start_ms"] * rate / 1000), int(w["book_end_ms"] * rate / 1000)
        assert b > a, w
        assert 20 * np.log10(np.sqrt(np.mean(audio[a:b] ** 2)) + 1e-12) > level - 20, w
    # the dataset's own independent energy check over every word
    quality = book["report"]["alignment_quality"]
    assert quality["words_passing"] == quality["words_checked"] == len(words)


def test_ljspeech_dataset_matches_its_audio(book: dict[str, Any]) -> None:
    root = book["out"] / "dataset" / "ljspeech"
    with (root / "metadata.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="|", quoting=csv.QUOTE_NONE))
    wavs = sorted(p.stem for p in (root / "wavs").glob("*.wav"))
    assert rows and sorted(r[0] for r in rows) == wavs
    assert all(len(r) == 3 and r[1] and r[2] for r in rows)
    words = " ".join(_words())
    assert all(f" {r[1]} " in f" {words} " for r in rows)  # each clip holds a run of the book's words
    for stem in wavs:
        info = sf.info(str(root / "wavs" / f"{stem}.wav"))
        assert (info.channels, info.samplerate, info.subtype) == (1, 22050, "PCM_16")
        assert 0.5 <= info.duration <= 8.0 + 0.2


def test_rerun_uses_the_cache(book: dict[str, Any]) -> None:
    before = _one(book["out"], "wav").read_bytes()
    state = run_flow(book["job"])
    assert state.is_completed()
    report = json.loads((book["out"] / "report.json").read_text())
    assert report["chunks_synthesized"] == 0 and report["chunks_from_cache"] == report["chunks_total"] > 0
    assert _one(book["out"], "wav").read_bytes() == before


def test_a_wrong_voice_path_fails_with_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_job(tmp_path, engine={"kind": "piper", "voice": "voices/missing.onnx"})
    code, _, err = run_cli(capsys, "run", str(job), "--yes")
    assert_one_line_error(code, err, str(tmp_path / "voices" / "missing.onnx"))
    assert not (tmp_path / "out").exists()
