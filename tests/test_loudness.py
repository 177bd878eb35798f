"""Streaming meters against independent references (pyloudnorm, numpy, scipy)."""

from __future__ import annotations

import itertools
import math
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.audio.loudness import Analyzer, LevelMeter, LoudnessMeter, Measurement, TruePeakMeter
from tests.mastering_signals import (
    SR,
    burst_in_quiet_speech,
    db_gain,
    noise,
    ref_lufs,
    ref_rms_db,
    ref_sample_peak_db,
    ref_true_peak_db,
    speech,
    tone,
)


def measure(x: np.ndarray, rate: int = SR, block: int = 65536, **kwargs: int) -> Measurement:
    analyzer = Analyzer(rate, **kwargs)
    for i in range(0, len(x), block):
        analyzer.add(x[i : i + block])
    return analyzer.result()


SIGNALS = {
    "speech": lambda: speech(),
    "loud speech": lambda: db_gain(speech(), 3.0),
    "white noise": lambda: noise(8.0, -25.0),
    "1 kHz tone": lambda: tone(1000.0, 5.0, -12.0),
    "100 Hz tone": lambda: tone(100.0, 5.0, -12.0),
    "burst in quiet speech": burst_in_quiet_speech,
}


def whole_blocks(x: np.ndarray, rate: int) -> np.ndarray:
    """Trim to 400 ms plus whole 100 ms steps. pyloudnorm rounds its block count and so may add
    a last block that runs past the end (its energy divided by a full block's length);
    BS.1770 and our meter use complete blocks only. On a whole number of steps both agree on
    the blocks, and what remains is the K-weighting filter."""
    step = rate // 10
    return x[: 4 * step + (len(x) - 4 * step) // step * step]


@pytest.mark.parametrize("name", SIGNALS)
def test_integrated_loudness_agrees_with_pyloudnorm(name: str) -> None:
    # Our filter is BS.1770's own (as libebur128 and ffmpeg's ebur128); pyloudnorm's default
    # filter normalises its high-pass to unity gain, so broadband audio reads about 0.085 LU
    # lower there. That is the difference left inside this 0.1 LU tolerance.
    x = whole_blocks(SIGNALS[name](), SR)
    ours = measure(x).integrated_lufs
    assert abs(ours - ref_lufs(x, SR)) <= 0.1


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_loudness_agrees_with_pyloudnorm_at_other_rates(rate: int) -> None:
    x = np.concatenate([noise(3.0, -30.0, rate, seed=3), tone(440.0, 3.0, -18.0, rate)])
    x = whole_blocks(x, rate)
    assert abs(measure(x, rate).integrated_lufs - ref_lufs(x, rate)) <= 0.1


def test_reference_tone_reads_as_the_standard_says() -> None:
    # BS.1770: a 997 Hz sine at 0 dBFS peak reads -3.01 LUFS; K-weighting is ~0 dB there.
    x = tone(997.0, 10.0, -20.0, 48000)
    assert measure(x, 48000).integrated_lufs == pytest.approx(-23.01, abs=0.02)


def test_gates_ignore_silence_and_quiet_passages() -> None:
    rate = 8000
    loud = tone(300.0, 40.0, -10.0, rate)
    quiet = db_gain(loud[: rate * 20], -40.0)
    padded = np.concatenate([np.zeros(rate * 20, dtype=np.float32), loud, quiet])
    # The absolute gate drops the silence, the relative gate the -40 dB passage; only the few
    # blocks straddling an edge (part tone, part not) still count, which costs < 0.05 LU here.
    assert measure(padded, rate).integrated_lufs == pytest.approx(measure(loud, rate).integrated_lufs, abs=0.05)


def test_silence_and_too_short_audio_have_no_loudness() -> None:
    assert measure(np.zeros(SR * 2, dtype=np.float32)).integrated_lufs == -math.inf
    assert measure(tone(1000.0, 0.3, -10.0)).integrated_lufs == -math.inf  # < one 400 ms block


@pytest.mark.parametrize("name", ["speech", "white noise", "burst in quiet speech"])
def test_rms_and_sample_peak_are_exact(name: str) -> None:
    x = SIGNALS[name]()
    m = measure(x)
    assert m.rms_db == pytest.approx(ref_rms_db(x), abs=1e-5)
    assert m.sample_peak_db == pytest.approx(ref_sample_peak_db(x), abs=1e-6)


@pytest.mark.parametrize("name", ["speech", "loud speech", "white noise", "burst in quiet speech"])
def test_true_peak_agrees_with_a_longer_oversampler(name: str) -> None:
    x = SIGNALS[name]()
    assert measure(x).true_peak_db == pytest.approx(ref_true_peak_db(x), abs=0.15)


def test_true_peak_finds_the_peak_between_samples() -> None:
    # A quarter-rate sine sampled 45 degrees off its crests: every sample is 3 dB below the peak.
    # (Faded in and out: an abrupt start would overshoot between samples for real.)
    n = np.arange(SR)
    fade = np.minimum(1.0, np.minimum(n, n[::-1]) / (SR * 0.1))
    x = (0.5 * np.sin(np.pi / 2 * n + np.pi / 4) * fade).astype(np.float32)
    m = measure(x)
    assert m.sample_peak_db == pytest.approx(20 * math.log10(0.5) - 3.01, abs=0.01)
    assert m.true_peak_db == pytest.approx(20 * math.log10(0.5), abs=0.05)


def test_noise_floor_is_the_quietest_half_second() -> None:
    quiet = noise(1.0, -66.0, seed=4)
    x = np.concatenate([noise(3.0, -20.0), quiet, noise(3.0, -20.0)])
    assert measure(x).noise_floor_db == pytest.approx(ref_rms_db(quiet), abs=0.5)
    assert measure(np.concatenate([x, np.zeros(SR, np.float32)])).noise_floor_db == -math.inf


def test_head_and_tail_levels() -> None:
    x = np.concatenate([noise(0.75, -70.0, seed=5), noise(4.0, -20.0), noise(2.0, -65.0, seed=6)])
    m = measure(x, head_ms=750, tail_ms=2000, block=999)
    assert m.head_rms_db == pytest.approx(ref_rms_db(x[: int(0.75 * SR)]), abs=1e-6)
    assert m.tail_rms_db == pytest.approx(ref_rms_db(x[-2 * SR :]), abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=1, max_value=30000), min_size=1, max_size=12),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_block_boundaries_do_not_change_any_measurement(cuts: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(3 * SR) * rng.uniform(0.01, 0.5)).astype(np.float32)
    x[SR : SR + 500] *= 6  # a loud spot, so the true-peak search has something to find
    whole = measure(x, block=len(x), head_ms=500, tail_ms=700)
    analyzer = Analyzer(SR, head_ms=500, tail_ms=700)
    edges = sorted({min(c * 7 % len(x), len(x)) for c in cuts} | {0, len(x)})
    for lo, hi in itertools.pairwise(edges):
        analyzer.add(x[lo:hi])
    split = analyzer.result()
    assert split.integrated_lufs == pytest.approx(whole.integrated_lufs, abs=1e-9)
    assert split.true_peak_db == pytest.approx(whole.true_peak_db, abs=1e-4)  # FFT or direct: float32
    assert split.rms_db == pytest.approx(whole.rms_db, abs=1e-9)
    assert split.noise_floor_db == pytest.approx(whole.noise_floor_db, abs=1e-9)
    assert split.head_rms_db == pytest.approx(whole.head_rms_db, abs=1e-9)
    assert split.tail_rms_db == pytest.approx(whole.tail_rms_db, abs=1e-9)


def _stream(minutes: float) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(0)
    block = SR * 5
    for _ in range(int(minutes * 60 * SR / block)):
        yield (rng.standard_normal(block) * 0.05).astype(np.float32)


def _peak_traced(minutes: float) -> int:
    tracemalloc.start()
    try:
        meters = (LoudnessMeter(SR), TruePeakMeter(), LevelMeter(SR, head_ms=750, tail_ms=2000))
        for block in _stream(minutes):
            for meter in meters:
                meter.add(block)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_meter_memory_does_not_grow_with_length() -> None:
    short, long = _peak_traced(1.0), _peak_traced(10.0)
    assert long < short * 1.2 + 256 * 1024
