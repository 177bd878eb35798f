"""Atomic chapter writes, bad input, book joins, and memory that stays flat."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio.assemble import PauseSettings, assemble_chapter, join_files
from pipeline.audio.wavio import container_for
from pipeline.errors import EngineError, InputError, OutputError
from pipeline.models import SynthesizedChunk
from tests.assembly_signals import SR, loader, locate, make_item, ms, noise_burst, read

# --- atomicity and errors ---------------------------------------------------------------------


def _three_chunks() -> tuple[list[SynthesizedChunk], dict[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    samples = [noise_burst(rng, ms(300), ms(50), ms(50), 8000) for _ in range(3)]
    items = [make_item(i, s) for i, s in enumerate(samples)]
    return items, {item.chunk.id: s for item, s in zip(items, samples, strict=True)}


@pytest.mark.parametrize("existing", [True, False])
def test_failed_load_leaves_out_path_untouched(tmp_path: Path, existing: bool) -> None:
    items, audio = _three_chunks()
    out = tmp_path / "ch.wav"
    if existing:
        out.write_bytes(b"previous run")

    def load(item: SynthesizedChunk) -> np.ndarray:
        if item.chunk.seq == 2:
            raise KeyError("cache entry vanished")
        return audio[item.chunk.id]

    with pytest.raises(KeyError, match="vanished"):
        assemble_chapter(items, load, out, pauses=PauseSettings(), sample_rate=SR)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["ch.wav"] if existing else [])
    if existing:
        assert out.read_bytes() == b"previous run"


def test_output_replaces_old_file_with_umask_permissions(tmp_path: Path) -> None:
    items, audio = _three_chunks()
    out = tmp_path / "ch.wav"
    out.write_bytes(b"old")
    assemble_chapter(items, loader(audio), out, pauses=PauseSettings(), sample_rate=SR)
    assert sf.info(out).frames > 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["ch.wav"]


def test_unwritable_folder_is_one_output_error(tmp_path: Path) -> None:
    items, audio = _three_chunks()
    blocker = tmp_path / "chapters"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(OutputError, match=r"chapters/01\.wav") as error:
        assemble_chapter(items, loader(audio), blocker / "01.wav", pauses=PauseSettings(),
                         sample_rate=SR)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda s: s[:-1], "c0000-00001: cached audio has"),
        (lambda s: np.stack([s, s], axis=1), "c0000-00001: expected mono"),
        (lambda s: s.astype(np.int32), "c0000-00001: expected int16"),
    ],
)
def test_bad_chunk_audio_names_the_chunk(
    tmp_path: Path, mangle: Callable[[np.ndarray], np.ndarray], message: str
) -> None:
    items, audio = _three_chunks()
    audio[items[1].chunk.id] = mangle(audio[items[1].chunk.id])
    with pytest.raises(EngineError, match=message):
        assemble_chapter(items, loader(audio), tmp_path / "ch.wav", pauses=PauseSettings(),
                         sample_rate=SR)
    assert not list(tmp_path.iterdir())


def test_wrong_sample_rate_and_empty_chapter(tmp_path: Path) -> None:
    items, audio = _three_chunks()
    with pytest.raises(EngineError, match="c0000-00000: audio is 24000 Hz, the chapter is 22050"):
        assemble_chapter(items, loader(audio), tmp_path / "a.wav", pauses=PauseSettings(),
                         sample_rate=22050)
    with pytest.raises(OutputError, match="no chunks"):
        assemble_chapter([], loader(audio), tmp_path / "a.wav", pauses=PauseSettings(),
                         sample_rate=SR)
    with pytest.raises(ValueError, match="out of order"):
        assemble_chapter(items[::-1], loader(audio), tmp_path / "a.wav", pauses=PauseSettings(),
                         sample_rate=SR)


def test_huge_files_are_written_as_rf64() -> None:
    four_gib_of_floats = (2**32) // 4
    assert container_for(SR * 3600) == "WAV"
    assert container_for(four_gib_of_floats) == "RF64"
    assert container_for(four_gib_of_floats // 2, channels=2) == "RF64"


# --- joining chapters -------------------------------------------------------------------------


def _write(path: Path, samples: np.ndarray, sample_rate: int = SR) -> Path:
    sf.write(path, samples, sample_rate, subtype="FLOAT")
    return path


def test_join_files_offsets_and_content(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    # Longer than one streaming block, to cross block edges.
    parts = [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (70001, 12345, 150000)]
    paths = [_write(tmp_path / f"{i}.wav", p) for i, p in enumerate(parts)]
    out = tmp_path / "book.wav"
    offsets = join_files(paths, out, gap_ms=2000)
    gap = ms(2000)
    assert offsets == [0, 70001 + gap, 70001 + gap + 12345 + gap]
    joined = read(out)
    assert len(joined) == sum(len(p) for p in parts) + 2 * gap
    assert sf.info(out).subtype == "FLOAT"
    for offset, part in zip(offsets, parts, strict=True):
        np.testing.assert_array_equal(joined[offset : offset + len(part)], part)
        assert locate(joined, part[1000:3000]) == offset + 1000
    assert not joined[70001 : 70001 + gap].any()


def test_join_files_rejects_mismatched_or_missing_inputs(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.wav", np.zeros(100, np.float32))
    b = _write(tmp_path / "b.wav", np.zeros(100, np.float32), sample_rate=22050)
    out = tmp_path / "book.wav"
    out.write_bytes(b"keep me")
    with pytest.raises(InputError, match=r"b\.wav: 22050 Hz"):
        join_files([a, b], out, gap_ms=100)
    with pytest.raises(InputError, match=r"nope\.wav: cannot read audio"):
        join_files([a, tmp_path / "nope.wav"], out, gap_ms=100)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(OutputError, match="no files"):
        join_files([], out, gap_ms=100)


def test_join_assembled_chapters_maps_chunks_to_book_time(tmp_path: Path) -> None:
    items, audio = _three_chunks()
    layouts, paths = [], []
    for n in range(2):
        path = tmp_path / f"{n:02d}.wav"
        layouts.append(assemble_chapter(items, loader(audio), path,
                                        pauses=PauseSettings(head_ms=750, tail_ms=2000),
                                        sample_rate=SR))
        paths.append(path)
    offsets = join_files(paths, tmp_path / "book.wav", gap_ms=1000)
    assert offsets == [0, layouts[0].num_samples + ms(1000)]
    total = sum(layout.num_samples for layout in layouts) + ms(1000)
    assert sf.info(tmp_path / "book.wav").frames == total


# --- memory -----------------------------------------------------------------------------------

_MEMORY_PROBE = """
import resource, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[2])
from tests.assembly_signals import make_item
from pipeline.audio.assemble import PauseSettings, assemble_chapter

SR, CHUNK_S = 24000, 12
hours = float(sys.argv[3])
count = int(hours * 3600 / CHUNK_S)
tone = (8000 * np.sin(np.arange(SR * CHUNK_S) * 0.05)).astype(np.int16)
tone[: SR // 2] = 0
tone[-SR // 2 :] = 0

def load(item):
    return tone.copy()  # a fresh array per chunk, as a cache read would give

def run(n, name):
    items = [make_item(i, tone) for i in range(n)]
    return assemble_chapter(items, load, Path(sys.argv[1]) / name, pauses=PauseSettings(),
                            sample_rate=SR)

run(3, "warmup.wav")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
layout = run(count, "long.wav")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024, layout.num_samples / SR / 3600)
"""


@pytest.mark.slow
def test_two_hour_chapter_keeps_memory_flat(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(tmp_path), str(repo), "2"],
        capture_output=True, text=True, check=True, timeout=300,
    )
    growth_mb, hours = map(float, result.stdout.split())
    assert hours > 1.9  # the file really holds about two hours of audio
    assert growth_mb < 100, f"peak RSS grew by {growth_mb:.1f} MB"
