"""A streaming true-peak limiter with lookahead.

Gain alone cannot bring speech to a loudness target under a peak ceiling: synthetic speech peaks
high for its loudness. This limiter lowers the gain only around the peaks that would cross the
ceiling, and it does so smoothly:

1. ``need[n]``: how many dB the 4x-oversampled signal around sample ``n`` is over the ceiling
   (the largest interpolated value within the interpolation filter's reach, so every sample that
   shapes an inter-sample peak is turned down with it).
2. hold: the largest need over the last ``L`` samples (``L`` = lookahead);
3. release: the held reduction falls back at a steady rate (30 dB/s: 6 dB of limiting recovers
   over 0.2 s) instead of snapping back, so the gain does not flutter within a syllable;
4. attack: a moving average over ``L`` samples turns the step into a ramp that is complete by
   the time the peak comes out, because every average that covers a peak's output position
   only averages values at least as large as its need.

The audio is delayed by ``L - 1`` samples plus the filter reach; ``process`` simply returns
fewer samples at first and ``flush`` returns the rest, so the output has exactly the input's
length and alignment (word timings stay valid). All steps are vectorised per block, and
stretches that cannot reach the ceiling skip the oversampling entirely.

Why a second, safety pass: every sample is turned down by at least what the peaks it shapes
need, but not all by the same amount (the attack ramp and the release vary the gain within the
interpolation filter's reach), and the filter has negative taps, so an inter-sample value of
the limited signal can still come out a hair over the ceiling (Hypothesis found 0.0015 dB).
The same limiter run again on its own output sees only such hairs; its reductions are tiny and
nearly flat across the filter's reach, so the error left is of the second order. Where the first
pass left everything under the ceiling (most of a book) the second one skips the oversampling.
"""

from __future__ import annotations

import numpy as np

from pipeline.audio.loudness import (
    INTERPOLATION_BOUND,
    PHASES,
    TAPS_PER_SIDE,
    interpolated_magnitudes,
    sliding_max,
)

# Samples of context the need computation reads on either side of a sample: an interpolated
# point reads TAPS_PER_SIDE samples either side, and a sample's need looks at the points within
# that same reach (every sample that shapes an inter-sample peak is turned down with it).
_REACH = 2 * TAPS_PER_SIDE
_GAP_READ = 2 * TAPS_PER_SIDE  # an in-between point after sample g reads x[g-T+1 .. g+T]
# The phases as columns for windows read in time order (convolution reads them reversed).
_GATHER_TAPS = np.ascontiguousarray(PHASES[:, ::-1].T)
# Above this share of gaps to interpolate, filtering the whole block is cheaper than gathering.
_GATHER_MAX_SHARE = 0.05


def _need_db(x: np.ndarray, ceiling: float) -> np.ndarray:
    """dB over ``ceiling`` around each sample of ``x[_REACH : -_REACH]`` (0 where under).

    Only the gaps whose neighbourhood is loud enough to interpolate over the ceiling (the
    filter's gain bound says which) need interpolating: a few of them are gathered into one
    matrix product, many are filtered along the whole block, and quiet and moderate stretches
    cost a few vector passes and no filtering at all.
    """
    n = len(x) - 2 * _REACH
    if n <= 0:
        return np.zeros(max(n, 0), dtype=np.float32)
    magnitude = np.abs(x).astype(np.float32, copy=False)
    # gap g lies between samples g and g+1; loudest_read[i] covers what gap i + T - 1 reads
    loudest_read = sliding_max(magnitude, _GAP_READ)
    candidates = np.flatnonzero(loudest_read * INTERPOLATION_BOUND > ceiling)
    per_sample = magnitude.copy()
    if len(candidates) > len(x) * _GATHER_MAX_SHARE:
        points = interpolated_magnitudes(x).max(axis=0)  # every gap, in order
        first = TAPS_PER_SIDE - 1
        np.maximum(per_sample[first : first + len(points)], points, out=per_sample[first : first + len(points)])
        np.maximum(
            per_sample[first + 1 : first + 1 + len(points)], points, out=per_sample[first + 1 : first + 1 + len(points)]
        )
    elif len(candidates):
        gaps = candidates + (TAPS_PER_SIDE - 1)
        windows = x[candidates[:, None] + np.arange(_GAP_READ)].astype(np.float32, copy=False)
        points = np.abs(windows @ _GATHER_TAPS).max(axis=1)  # largest in-between value per gap
        # A gap's peak counts for both its samples (gaps are distinct, so plain indexing works).
        per_sample[gaps] = np.maximum(per_sample[gaps], points)
        per_sample[gaps + 1] = np.maximum(per_sample[gaps + 1], points)
    if per_sample.max() <= ceiling:
        return np.zeros(n, dtype=np.float32)
    spread = sliding_max(per_sample, 2 * TAPS_PER_SIDE + 1)  # [i] is centred on sample i + T
    envelope = spread[TAPS_PER_SIDE : TAPS_PER_SIDE + n]
    need = np.zeros(n, dtype=np.float32)
    over = envelope > ceiling
    need[over] = 20.0 * np.log10(envelope[over] / ceiling)
    return need


class TruePeakLimiter:
    """Keeps the 4x-oversampled signal at or under ``ceiling_db`` (dBFS), streaming: the main
    pass, then the safety pass on its output (see the module's docstring)."""

    def __init__(
        self, sample_rate: int, ceiling_db: float, *, lookahead_ms: float = 5.0, release_db_per_s: float = 30.0
    ) -> None:
        self._main = _LimiterPass(sample_rate, ceiling_db, lookahead_ms=lookahead_ms, release_db_per_s=release_db_per_s)
        self._safety = _LimiterPass(
            sample_rate, ceiling_db, lookahead_ms=lookahead_ms, release_db_per_s=release_db_per_s
        )
        self.lookahead = self._main.lookahead
        self.latency = self._main.latency + self._safety.latency

    @property
    def max_reduction_db(self) -> float:
        return self._main.max_reduction_db + self._safety.max_reduction_db

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed a block; returns the limited samples that are ready (possibly fewer)."""
        return self._safety.process(self._main.process(block))

    def flush(self) -> np.ndarray:
        """The samples still held back by the lookahead; the stream ends here."""
        return np.concatenate([self._safety.process(self._main.flush()), self._safety.flush()])


class _LimiterPass:
    """One pass of the limiter: need, hold, release, attack."""

    def __init__(
        self,
        sample_rate: int,
        ceiling_db: float,
        *,
        lookahead_ms: float = 5.0,
        release_db_per_s: float = 30.0,
    ) -> None:
        self.ceiling = 10.0 ** (ceiling_db / 20.0)
        self.lookahead = max(2, round(lookahead_ms * sample_rate / 1000))
        self.latency = _REACH + self.lookahead - 1
        self._release_db_per_sample = release_db_per_s / sample_rate
        self._ramp = np.zeros(0)  # release ramp, reused across blocks
        self.max_reduction_db = 0.0
        # Input from global index _start on (silence before the stream starts): the context the
        # need computation reads, and the samples waiting for their gain.
        self._x = np.zeros(_REACH, dtype=np.float32)
        self._start = -_REACH
        self._held_history = np.zeros(self.lookahead - 1, dtype=np.float32)  # needs, last L-1
        self._released_history = np.zeros(self.lookahead - 1, dtype=np.float64)  # released
        self._released_last = 0.0
        self._received = 0  # real input samples
        self._fed = 0  # input samples including the flush padding
        self._need_done = 0  # needs known for global indices below this
        self._emitted = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        self._received += len(block)
        return self._run(block)

    def flush(self) -> np.ndarray:
        return self._run(np.zeros(self.latency, dtype=np.float32))

    def _run(self, block: np.ndarray) -> np.ndarray:
        x = np.concatenate([self._x, block])
        self._fed += len(block)
        need_end = self._fed - _REACH
        if need_end <= self._need_done:
            self._x = x
            return np.zeros(0, dtype=np.float32)
        lo = self._need_done - _REACH - self._start
        need = _need_db(x[lo : need_end + _REACH - self._start], self.ceiling)
        reduction = self._gain_db(need)
        # The reduction computed with need m applies to the sample L-1 before it; samples
        # before the stream (the history's silence) and after its end are not output.
        first = self._need_done - (self.lookahead - 1)
        skip = max(0, self._emitted - first)
        stop = min(need_end - (self.lookahead - 1), self._received)
        count = max(0, stop - first - skip)
        begin = first + skip - self._start
        out = x[begin : begin + count]
        cut = reduction[skip : skip + count]
        # A copy either way: the caller may keep the block while this buffer is reused.
        out = out * np.power(np.float32(10.0), -cut / np.float32(20.0)) if cut.any() else out.copy()
        self._need_done = need_end
        self._emitted += len(out)
        # Keep the context the next needs read and every sample not yet output.
        keep = min(self._need_done - _REACH, self._emitted)
        self._x = x[keep - self._start :]
        self._start = keep
        return out

    def _gain_db(self, need: np.ndarray) -> np.ndarray:
        """Reduction (dB) for each new need value: hold over L, release, then average over L."""
        lookahead = self.lookahead
        held_input = np.concatenate([self._held_history, need])
        self._held_history = held_input[len(held_input) - (lookahead - 1) :]
        if not held_input.any() and self._released_last == 0.0 and not self._released_history.any():
            return np.zeros(len(need), dtype=np.float32)
        held = sliding_max(held_input, lookahead)
        released = self._release(held)
        averaged_input = np.concatenate([self._released_history, released])
        self._released_history = averaged_input[len(averaged_input) - (lookahead - 1) :]
        sums = np.cumsum(averaged_input, dtype=np.float64)
        sums = np.concatenate([[0.0], sums])
        averaged = (sums[lookahead:] - sums[:-lookahead]) / lookahead
        averaged[averaged < 1e-6] = 0.0  # float dust of the running sum, not a reduction
        if len(averaged):
            self.max_reduction_db = max(self.max_reduction_db, float(averaged.max()))
        return averaged.astype(np.float32)

    def _release(self, held: np.ndarray) -> np.ndarray:
        """``r[n] = max(held[n], r[n-1] - rate)``: the reduction falls back at a constant dB rate.

        With ``q[n] = r[n] + n*rate`` this is a running maximum of ``held[j] + j*rate``, so the
        whole block is three vector operations instead of a loop.
        """
        if len(self._ramp) < len(held):
            self._ramp = np.arange(1, len(held) + 1, dtype=np.float64) * self._release_db_per_sample
        ramp = self._ramp[: len(held)]
        running = np.maximum.accumulate(np.maximum(held + ramp, self._released_last))
        released = np.maximum(running - ramp, 0.0)
        self._released_last = float(released[-1]) if len(released) else self._released_last
        return released
