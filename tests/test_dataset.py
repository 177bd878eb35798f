"""Dataset export and the alignment quality check on real espeak-ng speech.

The fast tests use a three-chapter manuscript written here (about 20 s of speech); the slow
ones the demo manuscript, loaded back with Hugging Face ``datasets`` and checked against the
audio files, plus the measured alignment accuracy (bench/alignment_accuracy.py).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio.assemble import PauseSettings
from pipeline.config import DatasetConfig, DatasetSplit
from pipeline.dataset import alignment_quality, export_dataset, word_energy_check
from pipeline.errors import InputError, OutputError
from pipeline.models import ChapterTimeline
from tests.conftest import DEMO_MANUSCRIPT
from tests.dataset_support import TINY_BOOK, build_chapters

Chapters = list[tuple[ChapterTimeline, Path]]
SPLIT = DatasetConfig(split=DatasetSplit(validation=0.3))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Chapters:
    folder = tmp_path_factory.mktemp("tiny")
    manuscript = folder / "tiny.md"
    manuscript.write_text(TINY_BOOK, encoding="utf-8")
    # Room tone-free head and tail silence, so the quality check has pauses to find.
    _, chapters = build_chapters(folder, manuscript, pauses=PauseSettings(head_ms=1500, tail_ms=500))
    return chapters


def ljspeech_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh, delimiter="|", quoting=csv.QUOTE_NONE))


def jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert "\n\n" not in text and text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def check_layout(out: Path, summary: dict[str, Any], sample_rate: int = 22050) -> None:
    """Every format's manifests match its audio files one to one, with true durations."""
    wavs = sorted(p.stem for p in (out / "ljspeech" / "wavs").glob("*.wav"))
    rows = ljspeech_rows(out / "ljspeech" / "metadata.csv")
    assert all(len(r) == 3 and r[1] and r[2] for r in rows)
    assert sorted(r[0] for r in rows) == wavs and len(wavs) == summary["clips"] > 0
    nemo = jsonl(out / "nemo" / "manifest.jsonl")
    assert sorted(Path(r["audio_filepath"]).stem for r in nemo) == wavs
    for row in nemo:
        info = sf.info(str(out / "nemo" / row["audio_filepath"]))
        assert (info.channels, info.samplerate, info.subtype) == (1, sample_rate, "PCM_16")
        assert abs(row["duration"] - info.frames / info.samplerate) < 0.01
        assert set(row) == {"audio_filepath", "duration", "text", "normalized_text", "speaker"}
    folder_rows = [r for meta in sorted((out / "audiofolder").glob("*/metadata.jsonl")) for r in jsonl(meta)]
    assert sorted(r["id"] for r in folder_rows) == wavs
    assert sorted(p.stem for p in (out / "audiofolder").glob("*/*.wav")) == wavs
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_export_writes_three_matching_layouts(tiny: Chapters, tmp_path: Path) -> None:
    summary = export_dataset(tiny, SPLIT, tmp_path, language="en", split_seed_key="tiny")
    check_layout(tmp_path, summary)
    nemo = jsonl(tmp_path / "nemo" / "manifest.jsonl")
    durations = [r["duration"] for r in nemo]
    assert min(durations) >= 1.0 and max(durations) <= 15.0
    assert summary["seconds"] == pytest.approx(sum(durations), abs=0.01)
    assert summary["words"]["in_clips"] + summary["words"]["skipped"] == summary["words"]["total"]
    # The same audio, stored once: every format's copy of a clip is the same file.
    for row in nemo:
        clip = Path(row["audio_filepath"]).name
        ljs = tmp_path / "ljspeech" / "wavs" / clip
        assert ljs.read_bytes() == (tmp_path / "nemo" / "wavs" / clip).read_bytes()


def test_text_as_written_and_spoken(tiny: Chapters, tmp_path: Path) -> None:
    export_dataset(tiny, SPLIT, tmp_path, language="en", split_seed_key="tiny")
    rows = {r[0]: (r[1], r[2]) for r in ljspeech_rows(tmp_path / "ljspeech" / "metadata.csv")}
    written = " ".join(t for t, _ in rows.values())
    spoken = " ".join(n for _, n in rows.values())
    for as_written in ("112", "5 a.m.", "42nd", "$5", "Dr. Pell", "3rd", "1,250"):
        assert as_written in written
    for as_spoken in ("one hundred and twelve", "forty-second", "five dollars", "Doctor Pell", "third"):
        assert as_spoken in spoken
    assert "tiny-c01-s0000" in rows and rows["tiny-c01-s0000"][0] == "Chapter One"


def test_split_by_chapter_without_shared_text(tiny: Chapters, tmp_path: Path) -> None:
    summary = export_dataset(tiny, SPLIT, tmp_path, language="en", split_seed_key="tiny")
    held = set(summary["splits"]["validation"]["chapters"])
    assert len(held) == 1 and set(summary["splits"]["train"]["chapters"]) == {1, 2, 3} - held
    train = jsonl(tmp_path / "audiofolder" / "train" / "metadata.jsonl")
    validation = jsonl(tmp_path / "audiofolder" / "validation" / "metadata.jsonl")
    assert {r["chapter"] for r in validation} == held and not {r["chapter"] for r in train} & held
    assert not {r["text"] for r in train} & {r["text"] for r in validation}
    for name, rows in (("train", train), ("validation", validation)):
        assert summary["splits"][name]["clips"] == len(rows)
        ljs = ljspeech_rows(tmp_path / "ljspeech" / f"metadata_{name}.csv")
        nemo = jsonl(tmp_path / "nemo" / f"{name}_manifest.jsonl")
        assert [r[0] for r in ljs] == [r["id"] for r in rows] == [Path(r["audio_filepath"]).stem for r in nemo]


def test_rerun_overwrites_the_same_files_and_removes_stale_ones(tiny: Chapters, tmp_path: Path) -> None:
    first = export_dataset(tiny, SPLIT, tmp_path, language="en", split_seed_key="tiny")
    names = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.wav"))
    (tmp_path / "ljspeech" / "README.txt").write_text("mine")
    (tmp_path / "ljspeech" / "speakers.csv").write_text("mine too")
    again = export_dataset(tiny, SPLIT, tmp_path, language="en", split_seed_key="tiny")
    assert again == first and sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.wav")) == names
    # Other settings: longer clips, no split, one format. The old clips and split files go.
    other = DatasetConfig(formats=["ljspeech"], min_s=4, sample_rate=16000)
    summary = export_dataset(tiny, other, tmp_path, language="en", split_seed_key="tiny")
    check_ljs = ljspeech_rows(tmp_path / "ljspeech" / "metadata.csv")
    assert sorted(r[0] for r in check_ljs) == sorted(p.stem for p in (tmp_path / "ljspeech" / "wavs").iterdir())
    assert len(check_ljs) == summary["clips"] < first["clips"]
    assert not (tmp_path / "ljspeech" / "metadata_train.csv").exists()
    assert (tmp_path / "ljspeech" / "README.txt").read_text() == "mine"
    assert (tmp_path / "ljspeech" / "speakers.csv").read_text() == "mine too"
    assert all(sf.info(str(p)).samplerate == 16000 for p in (tmp_path / "ljspeech" / "wavs").iterdir())


def test_clips_are_cut_in_silence_and_peak_safe(tiny: Chapters, tmp_path: Path) -> None:
    export_dataset(tiny, DatasetConfig(formats=["nemo"]), tmp_path, language="en", split_seed_key="tiny")
    for wav in (tmp_path / "nemo" / "wavs").glob("*.wav"):
        audio, rate = sf.read(str(wav), dtype="float32")
        assert float(np.max(np.abs(audio))) <= 10 ** (-1 / 20) + 1e-3
        frame = rate // 100
        levels = np.sqrt(np.mean(audio[: len(audio) // frame * frame].reshape(-1, frame) ** 2, axis=1))
        loud = float(np.percentile(levels, 90))
        # Within the padding, before the first word and after the last: far below speech.
        assert max(levels[0], levels[-1]) < loud * 10 ** (-30 / 20), wav.name


def test_energy_check_passes_real_timings_and_catches_misplaced_words(tiny: Chapters) -> None:
    timeline, path = tiny[0]
    passing, checked = word_energy_check(timeline, path)
    assert checked == len(timeline.words) and passing == checked
    # The same words moved into the silent head of the file (1.5 s of silence) all fail.
    shifted = replace(
        timeline,
        words=tuple(replace(w, start_ms=i * 10, end_ms=i * 10 + 200) for i, w in enumerate(timeline.words[:100])),
    )
    assert word_energy_check(shifted, path) == (0, len(shifted.words))
    # Words of zero length hold no speech, wherever they are.
    empty = replace(timeline, words=tuple(replace(w, end_ms=w.start_ms) for w in timeline.words))
    assert word_energy_check(empty, path)[0] == 0
    quality = alignment_quality([(shifted, path), *tiny[1:]], examples=3)
    total = len(shifted.words) + sum(len(t.words) for t, _ in tiny[1:])
    assert (quality["words_checked"], quality["words_passing"]) == (total, total - len(shifted.words))
    assert len(quality["failing_examples"]) == 3 and quality["failing_examples"][0]["chapter"] == 1


def test_bad_inputs_give_one_clear_error(tiny: Chapters, tmp_path: Path) -> None:
    timeline, _ = tiny[0]
    with pytest.raises(InputError, match=r"missing\.wav"):
        export_dataset([(timeline, tmp_path / "missing.wav")], SPLIT, tmp_path / "o", language="en", split_seed_key="x")
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.zeros((1000, 2), dtype=np.float32), 24000)
    with pytest.raises(InputError, match="2 channels"):
        word_energy_check(timeline, stereo)
    short = tmp_path / "short.wav"
    sf.write(str(short), np.zeros(24000, dtype=np.float32), 24000)
    with pytest.raises(InputError, match="words run to"):
        export_dataset([(timeline, short)], SPLIT, tmp_path / "o", language="en", split_seed_key="x")
    with pytest.raises(InputError, match="given twice"):
        export_dataset([tiny[0], tiny[0]], SPLIT, tmp_path / "o", language="en", split_seed_key="x")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="file"):
        export_dataset(tiny, SPLIT, blocker / "dataset", language="en", split_seed_key="x")


# --- the demo manuscript (slow) ------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Chapters:
    folder = tmp_path_factory.mktemp("demo-dataset")
    _, chapters = build_chapters(folder, DEMO_MANUSCRIPT)
    return chapters


@pytest.fixture
def offline_hf(tmp_path: Path) -> Iterator[None]:
    keys = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.mark.slow
def test_demo_dataset_loads_in_hugging_face_datasets(demo: Chapters, tmp_path: Path, offline_hf: None) -> None:
    out = tmp_path / "dataset"
    summary = export_dataset(demo, SPLIT, out, language="en", split_seed_key="demo")
    check_layout(out, summary)
    assert summary["words"]["skipped"] == 0 and summary["clips"] > 80

    import datasets

    loaded = datasets.load_dataset("audiofolder", data_dir=str(out / "audiofolder"), cache_dir=str(tmp_path / "c"))
    assert set(loaded) == {"train", "validation"}
    for name in ("train", "validation"):
        split = loaded[name]
        assert split.num_rows == summary["splits"][name]["clips"]
        assert {"audio", "text", "normalized_text", "duration", "chapter", "speaker"} <= set(split.column_names)
        assert isinstance(split.features["audio"], datasets.Audio)
        # Decoding needs librosa (datasets 3) or torchcodec (4+); the stored paths are what matters.
        for row in split.cast_column("audio", datasets.Audio(decode=False)):
            info = sf.info(row["audio"]["path"])
            assert Path(row["audio"]["path"]).stem == row["id"]
            assert abs(info.frames / info.samplerate - row["duration"]) < 0.01


@pytest.mark.slow
def test_demo_alignment_passes_the_energy_check(demo: Chapters) -> None:
    quality = alignment_quality(demo)
    assert quality["words_checked"] > 1400 and quality["fraction_passing"] >= 0.99


@pytest.mark.slow
def test_demo_alignment_accuracy_measured_independently(tmp_path: Path) -> None:
    from bench.alignment_accuracy import DEMO, measure

    result = measure(DEMO, tmp_path / "work", tmp_path / "cache")
    # espeak-ng's output varies a little run to run; the aligner loses a chunk now and then.
    assert result["chunks_not_found"] == 0 and result["chunks_not_aligned"] <= result["chunks"] // 10
    assert result["word_start_error"]["words"] >= 0.9 * result["words"]
    assert result["word_start_error"]["median_abs_ms"] < 20
    assert result["stitching_only"]["median_abs_ms"] <= 1
    assert result["cues"]["fraction_within_limits"] >= 0.99
    assert result["energy_check"]["fraction_passing"] >= 0.99
