"""Streaming level meters: BS.1770-4 integrated loudness, 4x true peak, RMS, noise floor.

Every meter takes audio block by block and keeps a fixed amount of state, so measuring a ten-hour
book costs the same memory as measuring a chapter. Levels are in dB relative to full scale:
``rms_db`` is ``10*log10(mean(x**2))`` (a full-scale square wave is 0 dB, a full-scale sine
-3.01 dB, the convention of ACX and Audacity); peaks are ``20*log10(max|x|)``. Silence measures
``-inf``.

Integrated loudness follows ITU-R BS.1770-4: K-weighting (a high shelf and a high pass), mean
square over 400 ms blocks every 100 ms, an absolute gate at -70 LUFS and a relative gate 10 LU
below the loudness of the blocks that pass it. Instead of keeping every block's energy (which
grows with length), blocks are summed into a histogram of 0.01 LU bins that keeps the exact
energy sum per bin; only the bin holding the relative gate is ambiguous, an error far below
0.01 LU.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy import signal

OVERSAMPLING = 4
# Half-width, in input samples, of the interpolation filter: each interpolated point depends on
# the 12 samples either side of it. Shorter filters (BS.1770's example has 6 a side) droop by
# 0.2 dB at 10 kHz, which 24 kHz speech does contain.
TAPS_PER_SIDE = 12
_KAISER_BETA = 6.0
_LUFS_OFFSET = -0.691
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0
_HIST_MIN_LUFS = -70.0
_HIST_BINS_PER_LU = 100
_HIST_BINS = 85 * _HIST_BINS_PER_LU  # -70 .. +15 LUFS; a louder block lands in the top bin
NOISE_WINDOW_MS = 500  # ACX measures the noise floor as the RMS of the quietest half second
_LEVEL_HOP_MS = 50


# Below -200 dB a level is digital silence plus decoder dust (an Opus decoder leaves values near
# 1e-34 in silent frames): report it as silence.
_SILENT_POWER = 1e-20


def to_db(power: float) -> float:
    """Power ratio (mean square) to dB; silence -> -inf."""
    return 10.0 * math.log10(power) if power > _SILENT_POWER else -math.inf


def amplitude_db(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 1e-10 else -math.inf


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """The two K-weighting biquads as second-order sections for ``sample_rate``.

    The analog prototypes (shelf centre, gain and Q; high-pass corner and Q) are the ones that
    reproduce the coefficients printed in BS.1770 for 48 kHz through the bilinear transform, so
    the same filter is obtained at any rate. The printed high-pass has numerator (1, -2, 1),
    which gives it a passband gain of +0.043 dB at 48 kHz (absorbed by the -0.691 constant);
    keeping that numerator at other rates would let the gain drift (+0.13 dB at 16 kHz), so the
    high-pass is scaled to the 48 kHz passband gain instead.
    """
    shelf_f0, shelf_gain_db, shelf_q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * shelf_f0 / sample_rate)
    vh = 10.0 ** (shelf_gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / shelf_q + k * k
    shelf = [
        (vh + vb * k / shelf_q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / shelf_q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / shelf_q + k * k) / a0,
    ]
    return np.array([shelf, _highpass(sample_rate, _highpass_gain(48000))], dtype=np.float64)


def _highpass_poles(sample_rate: int) -> tuple[float, float]:
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1.0 + k / q + k * k
    return 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0


def _highpass_gain(sample_rate: int) -> float:
    """Gain at the Nyquist frequency of the high-pass with numerator (1, -2, 1)."""
    a1, a2 = _highpass_poles(sample_rate)
    return 4.0 / (1.0 - a1 + a2)


def _highpass(sample_rate: int, passband_gain: float) -> list[float]:
    a1, a2 = _highpass_poles(sample_rate)
    g = passband_gain / _highpass_gain(sample_rate)
    return [g, -2.0 * g, g, 1.0, a1, a2]


def _interpolation_phases() -> np.ndarray:
    """Polyphase interpolation filters for 4x oversampling, shape (3, 2 * TAPS_PER_SIDE).

    A Kaiser-windowed sinc with its zeros on the input grid, so phase 0 is the input sample
    itself and only the three in-between phases need computing. Row ``p - 1``, convolved with
    ``x`` (``np.convolve``, which reverses it), gives the value ``p/4`` after a sample from the
    ``TAPS_PER_SIDE - 1`` samples before it to the ``TAPS_PER_SIDE`` after.
    """
    half = TAPS_PER_SIDE * OVERSAMPLING
    k = np.arange(-half, half + 1)
    prototype = np.sinc(k / OVERSAMPLING) * np.kaiser(2 * half + 1, _KAISER_BETA)
    offsets = OVERSAMPLING * np.arange(-TAPS_PER_SIDE, TAPS_PER_SIDE)
    rows = [prototype[half + offsets + p] for p in range(1, OVERSAMPLING)]
    return np.array(rows, dtype=np.float32)


PHASES = _interpolation_phases()
# No interpolated value can exceed this multiple of the largest nearby sample: lets meters and the
# limiter skip stretches that cannot reach the level they care about.
INTERPOLATION_BOUND = float(np.abs(PHASES).sum(axis=1).max())
_CONTEXT = 2 * TAPS_PER_SIDE - 1  # samples a valid interpolation needs beyond its first point
_DIRECT_CONVOLUTION_MAX = 16384


def interpolated_magnitudes(x: np.ndarray) -> np.ndarray:
    """|value| at the 3 in-between points after each sample, for the points fully inside ``x``.

    Row ``p - 1``, column ``i`` is the magnitude at ``x`` position ``i + TAPS_PER_SIDE - 1 + p/4``;
    the result has ``len(x) - 2 * TAPS_PER_SIDE + 1`` columns.
    """
    if len(x) <= _CONTEXT:
        return np.zeros((OVERSAMPLING - 1, 0), dtype=np.float32)
    x32 = np.asarray(x, dtype=np.float32)
    if len(x32) <= _DIRECT_CONVOLUTION_MAX:
        return np.abs(np.stack([np.convolve(x32, row, mode="valid") for row in PHASES]))
    # Long stretches: one FFT of the signal serves all three phases (about 3x the direct loop).
    size = sfft.next_fast_len(len(x32) + _CONTEXT, real=True)
    full = sfft.irfft(sfft.rfft(x32, size) * _phase_spectra(size), size, axis=1)
    return np.abs(full[:, _CONTEXT : len(x32)]).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=8)
def _phase_spectra(size: int) -> np.ndarray:
    return sfft.rfft(PHASES, size, axis=1)


def sliding_max(a: np.ndarray, width: int) -> np.ndarray:
    """``out[i] = max(a[i : i + width])`` for every full window.

    Doubling: maxima over windows of 2, 4, 8 ... samples, then two overlapping power-of-two
    windows cover any width; about log2(width) vector passes.
    """
    n = len(a)
    if n < width:
        return np.zeros(0, dtype=a.dtype)
    if width <= 1:
        return a.copy()
    span, level = 1, a
    while span * 2 <= width:
        level = np.maximum(level[:-span], level[span:])
        span *= 2
    count = n - width + 1
    return np.maximum(level[:count], level[width - span : width - span + count])


class TruePeakMeter:
    """Largest |value| of the 4x oversampled signal (dBTP), streaming.

    Stretches whose samples are too small to beat the running maximum even after interpolation
    are skipped, which makes the meter several times faster than oversampling everything.
    """

    _SEGMENT = 4096

    def __init__(self) -> None:
        self._tail = np.zeros(_CONTEXT, dtype=np.float32)  # silence before the start
        self.peak = 0.0

    def add(self, block: np.ndarray) -> None:
        if len(block) == 0:
            return
        data = np.concatenate([self._tail, np.asarray(block, dtype=np.float32)])
        self._tail = data[-_CONTEXT:]
        magnitude = np.abs(data)
        self.peak = max(self.peak, float(magnitude.max()))
        points = len(data) - _CONTEXT
        seg = self._SEGMENT
        count = -(-points // seg)
        padded = np.zeros(count * seg + seg, dtype=np.float32)
        padded[: len(data)] = magnitude
        seg_max = padded.reshape(-1, seg).max(axis=1)
        # Points of segment s read samples [s*seg, s*seg + seg + _CONTEXT): this segment and the
        # next one.
        bound = np.maximum(seg_max[:-1], seg_max[1:]) * INTERPOLATION_BOUND
        if np.count_nonzero(bound > self.peak) > count // 4:  # most of it: filter it all at once
            self.peak = max(self.peak, float(interpolated_magnitudes(data).max(initial=0.0)))
            return
        for s in np.argsort(bound)[::-1]:
            if bound[s] <= self.peak:
                break
            start = int(s) * seg
            window = data[start : min(start + seg + _CONTEXT, len(data))]
            values = interpolated_magnitudes(window)
            if values.size:
                self.peak = max(self.peak, float(values.max()))

    def flush(self) -> None:
        """Account for the points between the last sample and the silence after it."""
        self.add(np.zeros(_CONTEXT, dtype=np.float32))

    @property
    def peak_db(self) -> float:
        return amplitude_db(self.peak)


class LoudnessMeter:
    """BS.1770-4 integrated loudness of a mono stream, in constant memory."""

    def __init__(self, sample_rate: int) -> None:
        self._sos = k_weighting_sos(sample_rate)
        self._zi = np.zeros((self._sos.shape[0], 2))
        self._hop = max(1, round(sample_rate / 10))  # 100 ms
        self._pending = np.zeros(0)  # weighted squares of an unfinished hop
        self._recent: deque[float] = deque(maxlen=4)  # the last four hop energies
        self._counts = np.zeros(_HIST_BINS, dtype=np.int64)
        self._energy = np.zeros(_HIST_BINS, dtype=np.float64)

    def add(self, block: np.ndarray) -> None:
        if len(block) == 0:
            return
        weighted, self._zi = signal.sosfilt(self._sos, np.asarray(block, np.float64), zi=self._zi)
        squares = np.concatenate([self._pending, weighted * weighted])
        hops = len(squares) // self._hop
        self._pending = squares[hops * self._hop :]
        if hops == 0:
            return
        hop_sums = squares[: hops * self._hop].reshape(hops, self._hop).sum(axis=1)
        series = np.concatenate([np.array(self._recent), hop_sums])
        self._recent.extend(hop_sums[-4:].tolist())
        if len(series) < 4:
            return
        window = np.convolve(series, np.ones(4), mode="valid")[-hops:]  # 400 ms blocks
        self._bin(window / (4 * self._hop))

    def _bin(self, mean_squares: np.ndarray) -> None:
        with np.errstate(divide="ignore"):
            lufs = _LUFS_OFFSET + 10.0 * np.log10(mean_squares)
        passed = lufs > _ABSOLUTE_GATE_LUFS
        index = np.clip(
            ((lufs[passed] - _HIST_MIN_LUFS) * _HIST_BINS_PER_LU).astype(np.int64),
            0,
            _HIST_BINS - 1,
        )
        np.add.at(self._counts, index, 1)
        np.add.at(self._energy, index, mean_squares[passed])

    def integrated_lufs(self) -> float:
        total = int(self._counts.sum())
        if total == 0:
            return -math.inf
        mean = float(self._energy.sum()) / total
        relative_gate = _LUFS_OFFSET + 10.0 * math.log10(mean) + _RELATIVE_GATE_LU
        first = math.floor((relative_gate - _HIST_MIN_LUFS) * _HIST_BINS_PER_LU)
        first = min(max(first + 1, 0), _HIST_BINS - 1)  # bins wholly above the gate
        kept = int(self._counts[first:].sum())
        if kept == 0:
            return -math.inf
        return _LUFS_OFFSET + 10.0 * math.log10(float(self._energy[first:].sum()) / kept)


class LevelMeter:
    """Unweighted RMS, sample peak, noise floor (quietest 500 ms) and the RMS of the head and tail
    (for the room-tone check), streaming over 50 ms hops."""

    def __init__(self, sample_rate: int, *, head_ms: int = 0, tail_ms: int = 0) -> None:
        self._hop = max(1, round(sample_rate * _LEVEL_HOP_MS / 1000))
        self._window_hops = NOISE_WINDOW_MS // _LEVEL_HOP_MS
        self._head_frames = round(sample_rate * head_ms / 1000)
        self._tail_frames = round(sample_rate * tail_ms / 1000)
        self._head_sum = 0.0
        self._tail = np.zeros(0)  # squares of the last _tail_frames samples seen
        self._pending = np.zeros(0)
        self._recent: deque[float] = deque(maxlen=self._window_hops)
        self.frames = 0
        self.sum_squares = 0.0
        self.peak = 0.0
        self._quietest = math.inf  # lowest mean square over any full noise window

    def add(self, block: np.ndarray) -> None:
        if len(block) == 0:
            return
        x = np.asarray(block, dtype=np.float64)
        squared = x * x
        if self.frames < self._head_frames:
            self._head_sum += float(squared[: self._head_frames - self.frames].sum())
        if self._tail_frames:
            self._tail = np.concatenate([self._tail, squared[-self._tail_frames :]])
            self._tail = self._tail[-self._tail_frames :]
        self.frames += len(x)
        self.peak = max(self.peak, float(np.abs(x).max()))
        self.sum_squares += float(squared.sum())
        squares = np.concatenate([self._pending, squared])
        hops = len(squares) // self._hop
        self._pending = squares[hops * self._hop :]
        if hops == 0:
            return
        hop_sums = squares[: hops * self._hop].reshape(hops, self._hop).sum(axis=1)
        series = np.concatenate([np.array(self._recent), hop_sums])
        self._recent.extend(hop_sums[-self._window_hops :].tolist())
        w = self._window_hops
        if len(series) >= w:
            windows = np.convolve(series, np.ones(w), mode="valid")[-hops:]
            self._quietest = min(self._quietest, float(windows.min()) / (w * self._hop))

    @property
    def rms_db(self) -> float:
        return to_db(self.sum_squares / self.frames) if self.frames else -math.inf

    @property
    def noise_floor_db(self) -> float:
        if math.isinf(self._quietest):  # shorter than one window: the whole file is the window
            return self.rms_db
        return to_db(self._quietest)

    @property
    def head_rms_db(self) -> float:
        """RMS of the first ``head_ms`` (or of the whole file if shorter)."""
        frames = min(self._head_frames, self.frames)
        return to_db(self._head_sum / frames) if frames else -math.inf

    @property
    def tail_rms_db(self) -> float:
        """RMS of the last ``tail_ms`` (or of the whole file if shorter)."""
        return to_db(float(self._tail.mean())) if len(self._tail) else -math.inf


@dataclass(frozen=True, kw_only=True)
class Measurement:
    sample_rate: int
    frames: int
    integrated_lufs: float
    rms_db: float
    true_peak_db: float
    sample_peak_db: float
    noise_floor_db: float
    head_rms_db: float
    tail_rms_db: float

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


class Analyzer:
    """All the meters in one streaming pass."""

    def __init__(self, sample_rate: int, *, head_ms: int = 0, tail_ms: int = 0) -> None:
        self.sample_rate = sample_rate
        self.loudness = LoudnessMeter(sample_rate)
        self.true_peak = TruePeakMeter()
        self.levels = LevelMeter(sample_rate, head_ms=head_ms, tail_ms=tail_ms)

    def add(self, block: np.ndarray) -> None:
        self.loudness.add(block)
        self.true_peak.add(block)
        self.levels.add(block)

    def result(self) -> Measurement:
        self.true_peak.flush()
        return Measurement(
            sample_rate=self.sample_rate,
            frames=self.levels.frames,
            integrated_lufs=self.loudness.integrated_lufs(),
            rms_db=self.levels.rms_db,
            true_peak_db=self.true_peak.peak_db,
            sample_peak_db=amplitude_db(self.levels.peak),
            noise_floor_db=self.levels.noise_floor_db,
            head_rms_db=self.levels.head_rms_db,
            tail_rms_db=self.levels.tail_rms_db,
        )
