"""The true-peak limiter: ceiling held, length and alignment kept, gain moving smoothly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.audio.limiter import TruePeakLimiter
from pipeline.audio.loudness import Analyzer
from pipeline.audio.resample import StreamingResampler
from tests.mastering_signals import SR, db_gain, noise, ref_true_peak_db, speech


def limit(x: np.ndarray, ceiling_db: float, block: int = 4096, rate: int = SR) -> tuple[np.ndarray, TruePeakLimiter]:
    limiter = TruePeakLimiter(rate, ceiling_db)
    parts = [limiter.process(x[i : i + block]) for i in range(0, len(x), block)]
    parts.append(limiter.flush())
    return np.concatenate(parts), limiter


def true_peak_db(x: np.ndarray) -> float:
    analyzer = Analyzer(SR)
    analyzer.add(x)
    return analyzer.result().true_peak_db


def test_loud_speech_is_held_under_the_ceiling_with_its_length() -> None:
    x = db_gain(speech(), 6.0)  # peaks about 6 dB over full scale
    out, limiter = limit(x, -1.0)
    assert len(out) == len(x)
    assert true_peak_db(out) <= -1.0 + 1e-3  # float rounding of the gain, nothing more
    assert ref_true_peak_db(out) <= -0.9  # a longer oversampling filter agrees within 0.1 dB
    # it took off what was over, and not more
    assert limiter.max_reduction_db == pytest.approx(true_peak_db(x) + 1.0, abs=0.1)


def test_audio_under_the_ceiling_passes_untouched_and_aligned() -> None:
    x = db_gain(speech(), -12.0)
    out, limiter = limit(x, -1.0, block=1000)
    assert np.array_equal(out, x)
    assert limiter.max_reduction_db == 0.0


def test_gain_is_turned_down_before_a_click_and_comes_back_smoothly() -> None:
    x = noise(2.0, -30.0, seed=2)
    click = SR
    x[click] = 1.5
    out, limiter = limit(x, -6.0)
    gain_db = 20 * np.log10(np.abs(out) / np.abs(x))
    assert 20 * np.log10(abs(out[click])) <= -6.0
    # The reduction starts within the lookahead before the click, not at it ...
    assert gain_db[click - limiter.lookahead // 2] < -1.0
    assert gain_db[click - 2 * limiter.latency] == pytest.approx(0.0, abs=1e-5)
    # ... and is released gradually: still partly reduced 100 ms later, gone after 0.5 s.
    assert -9.0 < gain_db[click + SR // 10] < -1.0
    assert gain_db[click + SR // 2] == pytest.approx(0.0, abs=1e-5)


def test_gain_changes_are_gradual() -> None:
    # No sample-to-sample gain jump bigger than the attack ramp: the gain never pumps or clicks.
    x = db_gain(speech(), 8.0)
    out, limiter = limit(x, -3.0)
    audible = np.abs(x) > 1e-3
    gain_db = 20 * np.log10(np.abs(out[audible]) / np.abs(x[audible]))
    index = np.flatnonzero(audible)
    steps = np.abs(np.diff(gain_db)) / np.diff(index)
    assert steps.max() <= limiter.max_reduction_db / limiter.lookahead * 2.0 + 1e-3


def test_limited_speech_resampled_for_mp3_stays_near_the_ceiling() -> None:
    out, _ = limit(db_gain(speech(), 6.0), -1.0)
    resampler = StreamingResampler(SR, 44100)
    resampled = np.concatenate([resampler.process(out), resampler.flush()])
    analyzer = Analyzer(44100)
    analyzer.add(resampled)
    assert analyzer.result().true_peak_db <= -0.9


@settings(max_examples=30, deadline=None)
@given(
    ceiling=st.floats(min_value=-9.0, max_value=-0.5),
    boost=st.floats(min_value=0.0, max_value=18.0),
    block=st.integers(min_value=1, max_value=20000),
    seed=st.integers(min_value=0, max_value=2**16),
)
# Found by Hypothesis: the first pass alone left the true peak 0.0015 dB over (uneven gain
# within the interpolation filter's reach); the safety pass holds it.
@example(ceiling=-9.0, boost=4.0, block=1, seed=246)
def test_any_signal_any_ceiling_any_block_size(ceiling: float, boost: float, block: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    envelope = np.repeat(rng.uniform(0.0, 1.0, 12), SR // 8)  # loud and quiet stretches
    x = (rng.standard_normal(len(envelope)) * envelope * 0.3 * 10 ** (boost / 20)).astype(np.float32)
    out, _ = limit(x, ceiling, block=max(block, 50))
    assert len(out) == len(x)
    assert true_peak_db(out) <= ceiling + 1e-3
    # Never louder than the input, anywhere.
    assert np.all(np.abs(out) <= np.abs(x) + 1e-7)
