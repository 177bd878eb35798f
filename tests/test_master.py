"""Mastering end to end: every profile met after encoding, measured by independent meters."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio.master import PROFILES, FileReport, MasteringTarget, Tags, master_file
from pipeline.config import AudioConfig
from pipeline.errors import ConfigError, OutputError
from tests.mastering_signals import (
    SR,
    burst_in_quiet_speech,
    db_gain,
    decoded,
    noise,
    ref_lufs,
    ref_rms_db,
    ref_sample_peak_db,
    ref_true_peak_db,
    speech,
    tone,
    with_room,
    write_source,
)

TAGS = Tags(title="The Lighthouse", author="A. Keeper", track=1, total_tracks=2, chapter_title="Dusk")


def run(
    tmp_path: Path, x: np.ndarray, profile: str | MasteringTarget, formats: list[str], *, ffmpeg: bool = False
) -> list[FileReport]:
    """Master ``x``; MP3/Opus through libsndfile unless ``ffmpeg`` (which starts a process)."""
    target = PROFILES[profile] if isinstance(profile, str) else profile
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = write_source(tmp_path / "source.wav", x)
    stem = tmp_path / "out" / "chapter"
    return master_file(src, stem, target=target, formats=formats, tags=TAGS, ffmpeg_encoders=ffmpeg)


def assert_meets(report: FileReport, target: MasteringTarget, source_seconds: float) -> np.ndarray:
    """Check one written file with pyloudnorm and numpy; returns its samples."""
    y, rate = decoded(Path(report.path))
    assert report.meets_profile, report.problems
    assert abs(len(y) / rate - source_seconds) < 0.002  # length kept (lossy: to the sample rate)
    if target.target_lufs is not None:
        assert abs(ref_lufs(y, rate) - target.target_lufs) <= 0.5
    if target.rms_db is not None:
        assert abs(ref_rms_db(y) - target.rms_db) <= 0.5
    if target.rms_range is not None:
        assert target.rms_range[0] <= ref_rms_db(y) <= target.rms_range[1]
    assert target.true_peak_db is not None
    assert ref_sample_peak_db(y) <= target.true_peak_db  # no sample over the ceiling
    assert ref_true_peak_db(y) <= target.true_peak_db + 0.15  # nor between samples
    # The report says what the independent meters say.
    assert report.rms_db == pytest.approx(ref_rms_db(y), abs=0.01)
    assert report.sample_peak_db == pytest.approx(ref_sample_peak_db(y), abs=0.01)
    assert report.integrated_lufs == pytest.approx(ref_lufs(y, rate), abs=0.15)
    return y


@pytest.mark.parametrize("profile", ["audiobook", "podcast", "ebu", "speech"])
def test_real_speech_meets_each_profile_in_wav_and_mp3(tmp_path: Path, profile: str) -> None:
    x = with_room(speech())
    reports = run(tmp_path, x, profile, ["wav", "mp3"])
    assert [r.format for r in reports] == ["wav", "mp3"]
    wav = sf.info(reports[0].path)
    assert wav.frames == len(x) and wav.samplerate == SR and wav.subtype == "PCM_16"
    assert sf.info(reports[1].path).samplerate == 44100  # MPEG-1 layer III for >= 192 kbps
    for report in reports:
        assert_meets(report, PROFILES[profile], len(x) / SR)


SYNTHETIC = {
    "tone": lambda: with_room(tone(1000.0, 6.0, -30.0)),
    "noise": lambda: with_room(noise(6.0, -35.0)),
    "burst in quiet speech": lambda: with_room(burst_in_quiet_speech()),
}


@pytest.mark.parametrize("profile", ["podcast", "audiobook"])
@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_signals_meet_the_profile(tmp_path: Path, name: str, profile: str) -> None:
    x = SYNTHETIC[name]()
    for report in run(tmp_path, x, profile, ["flac", "mp3"]):
        assert_meets(report, PROFILES[profile], len(x) / SR)


def test_opus_and_flac_meet_the_profile(tmp_path: Path) -> None:
    x = with_room(db_gain(speech(), -8.0))
    reports = run(tmp_path, x, "speech", ["opus", "flac"])
    assert sf.info(reports[0].path).samplerate == 48000
    for report in reports:
        assert_meets(report, PROFILES["speech"], len(x) / SR)


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["audiobook", "podcast"])
def test_ffmpeg_encoders_meet_the_profile(tmp_path: Path, profile: str) -> None:
    # With the m4b extra installed, MP3 and Opus go through ffmpeg's (faster) encoders.
    x = with_room(speech())
    reports = run(tmp_path, x, profile, ["mp3", "opus", "m4b"], ffmpeg=True)
    for report in reports:
        assert_meets(report, PROFILES[profile], len(x) / SR)


def test_audiobook_room_tone_quiet_present_and_repeatable(tmp_path: Path) -> None:
    x = with_room(speech())
    first = run(tmp_path / "a", x, "audiobook", ["wav"])[0]
    second = run(tmp_path / "b", x, "audiobook", ["wav"])[0]
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()
    y, _ = decoded(Path(first.path))
    head = y[: SR // 2]
    assert np.count_nonzero(head) > len(head) * 0.9  # no digital silence ...
    assert -78.0 < ref_rms_db(head) < -72.0  # ... but room tone well under -60 dBFS
    assert first.noise_floor_db <= -60.0


def test_mastering_keeps_every_sample_in_place(tmp_path: Path) -> None:
    # Heavy limiting (podcast on loud speech) must not shift anything: word timings depend on it.
    x = with_room(db_gain(speech(), 6.0))
    marks = [SR // 4, len(x) - SR // 2]  # clicks in the silence at both ends
    for mark in marks:
        x[mark] = 0.5
    y, _ = decoded(Path(run(tmp_path, x, "podcast", ["wav"])[0].path))
    assert len(y) == len(x)
    for mark in marks:
        assert int(np.argmax(np.abs(y[mark - 200 : mark + 200]))) == 200
    lag = np.argmax(np.correlate(y[SR : 3 * SR], x[SR - 50 : 3 * SR + 50], mode="valid")) - 50
    assert lag == 0


def test_none_leaves_the_audio_untouched(tmp_path: Path) -> None:
    x = with_room(db_gain(speech(), -3.0))
    report = run(tmp_path, x, "none", ["wav"])[0]
    written = sf.read(report.path, dtype="float32")[0]
    assert np.abs(written - x).max() <= 2 / 32768  # 16-bit rounding, nothing else
    assert report.gain_db == 0.0 and report.limiter_max_db == 0.0


def test_dataset_keeps_quiet_audio_and_only_turns_down_loud_audio(tmp_path: Path) -> None:
    quiet = with_room(db_gain(speech(), -10.0))
    kept = run(tmp_path / "quiet", quiet, "dataset", ["flac"])[0]
    assert kept.gain_db == 0.0
    assert kept.rms_db == pytest.approx(ref_rms_db(quiet), abs=0.01)

    loud = with_room(db_gain(speech(), 4.0))
    report = run(tmp_path / "loud", loud, "dataset", ["flac"])[0]
    y, _ = decoded(Path(report.path))
    assert report.meets_profile and ref_sample_peak_db(y) <= -1.0
    # a plain gain: the dynamics (peak to RMS) are the engine's own
    crest_in = ref_sample_peak_db(loud) - ref_rms_db(loud)
    assert ref_sample_peak_db(y) - ref_rms_db(y) == pytest.approx(crest_in, abs=0.05)
    assert report.limiter_max_db == 0.0


def test_overrides_from_the_job_file(tmp_path: Path) -> None:
    target = MasteringTarget.from_config(AudioConfig(loudness="audiobook", target_lufs=-20.0))
    assert (target.target_lufs, target.rms_db, target.true_peak_db) == (-20.0, None, -3.0)
    x = with_room(speech())
    assert_meets(run(tmp_path, x, target, ["wav"])[0], target, len(x) / SR)

    rms = MasteringTarget.from_config(AudioConfig(loudness="podcast", rms_db=-24.0, true_peak_db=-2.0))
    assert (rms.target_lufs, rms.rms_db, rms.rms_range, rms.true_peak_db) == (None, -24.0, (-25.0, -23.0), -2.0)
    assert MasteringTarget.from_config(AudioConfig(loudness="dataset", true_peak_db=-3.0)).true_peak_db == -3.0


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"target_lufs": -16.0, "rms_db": -20.0}, "target_lufs or rms_db"),
        ({"loudness": "none", "target_lufs": -16.0}, "audio.target_lufs"),
        ({"loudness": "dataset", "rms_db": -20.0}, "audio.rms_db"),
        ({"loudness": "none", "true_peak_db": -1.0}, "audio.true_peak_db"),
    ],
)
def test_contradictory_settings_are_one_clear_error(settings: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key) as info:
        MasteringTarget.from_config(AudioConfig.model_validate(settings))
    assert "\n" not in str(info.value)


def test_silent_audio_is_reported_not_amplified(tmp_path: Path) -> None:
    report = run(tmp_path, np.zeros(SR * 3, dtype=np.float32), "podcast", ["wav"])[0]
    assert not report.meets_profile and "the audio is silent" in report.problems
    assert not sf.read(report.path)[0].any()
    data = report.to_dict()
    json.dumps(data, allow_nan=False)  # strict JSON: silence is null, not -Infinity
    assert data["integrated_lufs"] is None and data["meets_profile"] is False


def test_too_short_to_measure_is_left_alone_and_said(tmp_path: Path) -> None:
    report = run(tmp_path, tone(440.0, 0.3, -30.0), "podcast", ["wav"])[0]
    assert report.gain_db == 0.0
    assert not report.meets_profile and report.problems[0].startswith("no integrated loudness")


def test_report_flags_what_misses_the_profile(tmp_path: Path) -> None:
    # Speech right at the start: no room tone at the head.
    report = run(tmp_path, np.concatenate([speech(), np.zeros(2 * SR, np.float32)]), "audiobook", ["wav"])[0]
    assert not report.meets_profile
    assert any(p.startswith("no room tone at the head") for p in report.problems)
    assert report.to_dict()["problems"] == list(report.problems)


def test_only_finished_files_are_left_behind(tmp_path: Path) -> None:
    run(tmp_path, with_room(speech()), "podcast", ["wav", "mp3", "flac"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["chapter.flac", "chapter.mp3", "chapter.wav"]


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    target = PROFILES["podcast"]
    with pytest.raises(OutputError, match="cannot read the audio"):
        master_file(tmp_path / "missing.wav", tmp_path / "x", target=target, formats=["wav"], tags=TAGS)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.zeros((SR, 2), dtype=np.float32), SR)
    with pytest.raises(OutputError, match="expected mono"):
        master_file(stereo, tmp_path / "x", target=target, formats=["wav"], tags=TAGS)
    src = write_source(tmp_path / "ok.wav", speech())
    with pytest.raises(OutputError, match="unknown audio format 'aiff'"):
        master_file(src, tmp_path / "x", target=target, formats=["aiff"], tags=TAGS)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot create output folder"):
        master_file(src, blocker / "sub" / "x", target=target, formats=["wav"], tags=TAGS)


def _master_peak_memory(tmp_path: Path, minutes: float) -> tuple[int, FileReport]:
    rate = 16000
    unit = with_room(speech(rate), rate, head_ms=0, tail_ms=500)
    src = tmp_path / f"long-{minutes}.wav"
    with sf.SoundFile(src, "w", rate, 1, "FLOAT") as f:
        for _ in range(int(minutes * 60 * rate / len(unit))):
            f.write(unit)
    tracemalloc.start()
    try:
        report = master_file(src, tmp_path / f"m{minutes}", target=PROFILES["speech"], formats=["wav"], tags=TAGS)
        return tracemalloc.get_traced_memory()[1], report[0]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_stays_flat_and_long_files_still_meet_the_target(tmp_path: Path) -> None:
    short, _ = _master_peak_memory(tmp_path, 1.0)
    long, report = _master_peak_memory(tmp_path, 15.0)  # past the length where excerpts are used
    assert long < short * 1.25 + 1024 * 1024
    assert report.meets_profile
    assert abs(report.integrated_lufs - (-18.0)) <= 0.5
    assert math.isfinite(report.noise_floor_db) is False  # untouched digital silence in the gaps
