"""Delivery formats: sample rates, bit rates, tags, M4B chapters, atomic writes, resampling."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from mutagen.mp3 import MP3, BitrateMode
from scipy import signal

from pipeline.audio.encode import EncoderOptions, Tags, decode, ffmetadata, ffmpeg_path, open_sink
from pipeline.audio.master import PROFILES, master_file
from pipeline.audio.resample import StreamingResampler
from pipeline.errors import OutputError
from tests.mastering_signals import SR, decoded, speech, tone, with_room, write_source

TAGS = Tags(
    title="Le Phare; = #1",
    author="Zoë Ørsted",
    track=3,
    total_tracks=12,
    chapter_title="Chapitre 3 — L'été",
)


FFMPEG = pytest.param(True, marks=pytest.mark.slow, id="ffmpeg")  # starts an ffmpeg process
LIBSNDFILE = pytest.param(False, id="libsndfile")


def write(tmp_path: Path, fmt: str, x: np.ndarray, *, kbps: int = 192, tags: Tags = TAGS, ffmpeg: bool = False) -> Path:
    path = tmp_path / f"out.{fmt}"
    options = EncoderOptions(mp3_bitrate_kbps=kbps, ffmpeg_encoders=ffmpeg)
    sink = open_sink(fmt, path, SR, tags, frames=len(x), options=options)
    for i in range(0, len(x), 10000):
        sink.write(x[i : i + 10000])
    sink.close()
    return path


@pytest.mark.parametrize("ffmpeg", [LIBSNDFILE, FFMPEG])
def test_mp3_is_constant_bit_rate_at_a_delivery_sample_rate(tmp_path: Path, ffmpeg: bool) -> None:
    x = tone(440.0, 4.0, -12.0)
    for kbps in (192, 128):
        path = write(tmp_path, "mp3", x, kbps=kbps, ffmpeg=ffmpeg)
        info = MP3(path).info
        assert info is not None
        assert info.sample_rate == 44100  # 24 kHz would force MPEG-2, which stops at 160 kbps
        assert info.bitrate_mode == BitrateMode.CBR
        assert abs(info.bitrate - kbps * 1000) <= 1000  # from the frame headers and length
        assert sf.info(str(path)).duration == pytest.approx(4.0, abs=0.001)  # gapless: delay trimmed


@pytest.mark.parametrize(
    ("fmt", "rate", "ffmpeg"),
    [
        ("wav", SR, False),
        ("flac", SR, False),
        ("opus", 48000, False),
        pytest.param("opus", 48000, True, marks=pytest.mark.slow),
    ],
)
def test_lossless_keep_the_rate_and_opus_runs_at_48k(tmp_path: Path, fmt: str, rate: int, ffmpeg: bool) -> None:
    x = tone(440.0, 2.0, -12.0)
    info = sf.info(str(write(tmp_path, fmt, x, ffmpeg=ffmpeg)))
    assert info.samplerate == rate
    assert info.frames == round(len(x) * rate / SR) or fmt == "opus"
    assert info.duration == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize("ffmpeg", [LIBSNDFILE, FFMPEG])
@pytest.mark.parametrize("fmt", ["flac", "mp3", "opus"])
def test_tags_read_back_by_mutagen(tmp_path: Path, fmt: str, ffmpeg: bool) -> None:
    tags = mutagen.File(write(tmp_path, fmt, tone(440.0, 1.0, -12.0), ffmpeg=ffmpeg), easy=True)
    assert tags is not None
    assert tags["title"] == ["Chapitre 3 — L'été"]
    assert tags["artist"] == ["Zoë Ørsted"]
    assert tags["album"] == ["Le Phare; = #1"]
    assert tags["tracknumber"] == ["3/12"]


def test_wav_carries_an_info_chunk(tmp_path: Path) -> None:
    with sf.SoundFile(str(write(tmp_path, "wav", tone(440.0, 1.0, -12.0)))) as f:
        assert (f.title, f.artist, f.album, f.tracknumber) == (
            "Chapitre 3 — L'été",
            "Zoë Ørsted",
            "Le Phare; = #1",
            "3/12",
        )


def test_untagged_files_have_no_empty_tags(tmp_path: Path) -> None:
    path = write(tmp_path, "mp3", tone(440.0, 1.0, -12.0), tags=Tags())
    assert MP3(path).tags is None


def test_decode_reads_back_every_block(tmp_path: Path) -> None:
    x = tone(440.0, 3.0, -12.0)
    rate, blocks = decode(write(tmp_path, "flac", x), "flac", block_frames=1000)
    y = np.concatenate(list(blocks))
    assert rate == SR and np.abs(y - x).max() < 1e-4


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot write flac"):
        write(tmp_path / "missing-folder", "flac", tone(440.0, 1.0, -12.0))
    path = tmp_path / "aborted.mp3"
    sink = open_sink("mp3", path, SR, TAGS, frames=SR, options=EncoderOptions(ffmpeg_encoders=False))
    sink.write(tone(440.0, 1.0, -12.0))
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_ffmetadata_escapes_what_ffmpeg_would_misread() -> None:
    text = ffmetadata(Tags(title="A=B; #C\\D"), [("One\nTwo", 0, 1500)])
    assert text.startswith(";FFMETADATA1\n")
    assert "title=A\\=B\\; \\#C\\\\D" in text
    assert "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\ntitle=One\\\nTwo\n" in text


def test_m4b_without_ffmpeg_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if the extra were not installed
    assert ffmpeg_path() is None
    src = write_source(tmp_path / "src.wav", speech())
    with pytest.raises(OutputError, match=r"pip install 'narrate\[m4b\]'") as info:
        master_file(src, tmp_path / "book", target=PROFILES["audiobook"], formats=["wav", "m4b"], tags=TAGS)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "book.wav").exists()  # refused before writing anything


@pytest.mark.slow
def test_m4b_has_chapter_markers_tags_and_meets_the_profile(tmp_path: Path) -> None:
    x = with_room(np.concatenate([speech(), np.zeros(SR, np.float32), speech()]))
    half = round(len(x) / SR * 500)
    chapters = [("Dusk = the start", 0, half), ("Night; #2", half, round(len(x) / SR * 1000))]
    src = write_source(tmp_path / "book.wav", x)
    book = Tags(title="Le Phare", author="Zoë Ørsted")
    report = master_file(
        src, tmp_path / "book", target=PROFILES["audiobook"], formats=["m4b"], tags=book, chapters=chapters
    )[0]
    assert report.meets_profile, report.problems
    exe = ffmpeg_path()
    assert exe is not None
    meta = subprocess.run(
        [exe, "-v", "error", "-i", report.path, "-f", "ffmetadata", "-"], capture_output=True, text=True, check=True
    ).stdout
    sections = meta.split("[CHAPTER]")
    assert "title=Le Phare" in sections[0] and "artist=Zoë Ørsted" in sections[0]
    assert len(sections) == 3
    for section, (title, start, end) in zip(sections[1:], chapters, strict=True):
        fields = dict(line.split("=", 1) for line in section.strip().splitlines() if "=" in line and "\\" not in line)
        assert int(fields["START"]) * 1000 // int(fields["TIMEBASE"].split("/")[1]) == start
        assert int(fields["END"]) * 1000 // int(fields["TIMEBASE"].split("/")[1]) == end
        unescaped = section.replace("\\", "")  # ffmpeg escapes = ; # \\ as we do
        assert f"title={title}" in unescaped
    y, rate = decoded(Path(report.path))
    assert abs(len(y) / rate - len(x) / SR) < 0.05


@settings(max_examples=20, deadline=None)
@given(
    rates=st.sampled_from([(24000, 44100), (24000, 48000), (22050, 44100), (44100, 24000), (16000, 48000)]),
    cuts=st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=8),
)
def test_streaming_resampler_matches_whole_signal_conversion(rates: tuple[int, int], cuts: list[int]) -> None:
    source, target = rates
    x = np.random.default_rng(len(cuts)).standard_normal(20000)
    common = np.gcd(source, target)
    reference = signal.resample_poly(x, target // common, source // common)
    resampler = StreamingResampler(source, target)
    edges = sorted({c * 3 % len(x) for c in cuts} | {0, len(x)})
    parts = [resampler.process(x[lo:hi]) for lo, hi in itertools.pairwise(edges)]
    parts.append(resampler.flush())
    y = np.concatenate(parts)
    assert len(y) == len(reference) == resampler.output_length(len(x))
    assert np.abs(y - reference).max() < 1e-5  # float32 output, no seams between blocks
