"""Choosing each output format's gain and limiter ceiling from the first-pass measurement.

One gain per file, never per chunk. Three effects are accounted for before anything is written:

- the limiter takes level off the loudest moments, more the higher the gain, so the gain is
  refined by running the limiter over the audio (or evenly spread excerpts of a long file);
- a lossy codec changes level and peaks a little, measured on excerpts (``calibrate``) and
  compensated with a gain offset and extra headroom under the ceiling;
- whatever remains after encoding is corrected on the measured file (``correct``), and that
  format alone is encoded again.
"""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.audio.calibrate import codec_effect
from pipeline.audio.encode import LOSSY, EncoderOptions
from pipeline.audio.excerpts import LevelProbe
from pipeline.audio.loudness import INTERPOLATION_BOUND, Measurement
from pipeline.audio.profiles import MasteringTarget
from pipeline.audio.render_pass import Chain, room_tone_peak

# Headroom under the ceiling for the limiter: our 4x meter against finer references, and the
# rounding to 16 bits. Lossy codecs get their measured overshoot on top, plus this again.
LOSSLESS_MARGIN_DB = 0.1
_CORRECTION_STEP_DB = 0.1  # extra headroom added when a decoded file still went over
_LEVEL_ACCURACY_DB = 0.2  # re-encode a file whose level is further than this from the goal
_REFINE_TOLERANCE_DB = 0.05
_REFINE_STEPS = 7  # limiter passes over the file (excerpts of it, when long) at most
_MAX_STEP_DB = 12.0
# Premastered audio keeps this far under the limit so the limiter provably stays idle.
_PREMASTERED_MARGIN_DB = 0.01


class ChainPlanner:
    """The processing chain (gain, limiter ceiling, room tone) for each format of one file."""

    def __init__(
        self,
        src: Path,
        source: Measurement,
        target: MasteringTarget,
        *,
        workdir: Path,
        options: EncoderOptions,
        premastered: bool = False,
    ) -> None:
        self._premastered = premastered
        self._src = src
        self._source = source
        self._target = target
        self._workdir = workdir
        self._options = options
        self.ceiling = target.true_peak_db
        self._audible = math.isfinite(source.rms_db)
        self.gain = self._base_gain()
        self._headroom: dict[str, float] = {}  # extra dB under the ceiling, per format
        self._shift: dict[str, float] = {}  # dB added to the level goal, per format
        self._refined: dict[tuple[float, float], float] = {}  # (goal shift, limit) -> gain
        self._calibrated: set[str] = set()
        self._probe: LevelProbe | None = None  # excerpts in memory, read on first use
        self._compensation = 0.0  # what the last refinement added to its plain gain

    def _base_gain(self) -> float:
        target, source = self._target, self._source
        if target.peak_safe_only and self.ceiling is not None:
            over = source.true_peak_db - (self.ceiling - LOSSLESS_MARGIN_DB)
            return -over if over > 0 else 0.0
        goal, level = target.goal, target.level_of(source)
        if goal is None or not math.isfinite(level):  # silent, or too short to gate (< 0.4 s)
            return 0.0
        return goal - level

    def chain(self, fmt: str) -> Chain:
        tone = self._target.room_tone_db
        if self.ceiling is None:  # 'none': untouched
            return Chain(self.gain, None, tone)
        if fmt in LOSSY and fmt not in self._calibrated:
            self._calibrate(fmt)
        headroom = self._headroom.get(fmt, 0.0)
        if self._target.peak_safe_only:
            return Chain(self.gain - headroom, None, tone)
        limit = round(self.ceiling - LOSSLESS_MARGIN_DB - headroom, 3)
        shift = round(self._shift.get(fmt, 0.0), 3)
        if self._premastered and fmt not in LOSSY and math.isfinite(self._source.true_peak_db):
            # Already limited at this ceiling (chapters joined into the book): gain alone, never
            # more than the peaks allow, so nothing is limited twice.
            gain = min(self.gain + shift, limit - self._source.true_peak_db - _PREMASTERED_MARGIN_DB)
        else:
            gain = self._refined_gain(shift, limit)
        return Chain(gain, None if self._limiter_idle(gain, limit, tone) else limit, tone)

    def _limiter_idle(self, gain: float, limit: float, tone: float | None) -> bool:
        """True when no 4x-interpolated value of the chain's signal can reach ``limit``: the
        limiter would pass every sample unchanged, so the chain skips it (and its oversampling).
        The source's true peak is measured with the limiter's own interpolation filter; the room
        tone, added before the limiter, is bounded by its largest sample through that filter."""
        peak = self._source.true_peak_db
        if not math.isfinite(peak):
            return True
        reach = 10.0 ** ((peak + gain) / 20.0)
        if tone is not None:
            reach += INTERPOLATION_BOUND * room_tone_peak(tone)
        return reach < 10.0 ** (limit / 20.0) * (1.0 - 1e-4)  # float32 rounding of either filter

    def _refined_gain(self, shift: float, limit: float) -> float:
        key = (shift, limit)
        if key not in self._refined:
            gain = self.gain + shift
            if self._target.normalizes and math.isfinite(self._source_level()):
                gain = self._refine(gain, limit)
            self._refined[key] = gain
        return self._refined[key]

    def _refine(self, gain: float, limit: float) -> float:
        """A gain whose output, limited at ``limit``, has the level ``gain`` alone would give.

        The limited level rises with the gain, by less than one dB per dB (the limiter takes back
        part of every extra dB): solve for the goal with secant steps, switching to false
        position once the goal is bracketed. The first try adds the compensation found for the
        previous ceiling (formats differ by tenths of a dB), which is usually close already.
        """
        if self._source.true_peak_db + gain <= limit:
            return gain  # the limiter will never act: gain alone is exact
        goal = self._source_level() + gain
        if self._probe is None:
            self._probe = LevelProbe(self._src, self._source, weighted=self._target.weighted)
        probe = self._probe
        tried: list[tuple[float, float]] = []  # (gain, limited level)

        def close_enough(trial: float) -> bool:
            limited = probe.level(Chain(trial, limit, self._target.room_tone_db))
            tried.append((trial, limited))
            return not math.isfinite(limited) or abs(limited - goal) < _REFINE_TOLERANCE_DB

        trial = gain + self._compensation
        for _ in range(_REFINE_STEPS):
            if close_enough(trial):
                break
            under = [t for t in tried if t[1] < goal]
            over = [t for t in tried if t[1] > goal]
            if under and over:  # bracketed: false position between the closest points either side
                low, high = max(under), min(over)
                trial = low[0] + (goal - low[1]) * (high[0] - low[0]) / (high[1] - low[1])
            elif len(tried) == 1:  # one point: assume every extra dB comes through
                trial = tried[0][0] + (goal - tried[0][1])
            else:  # one side only: extrapolate with the latest slope, kept between 0.05 and 1
                (g1, l1), (g2, l2) = tried[-2], tried[-1]
                slope = min(max((l2 - l1) / (g2 - g1), 0.05), 1.0) if g2 != g1 else 1.0
                trial = g2 + max(min((goal - l2) / slope, _MAX_STEP_DB), -_MAX_STEP_DB)
        best = min(tried, key=lambda t: abs(t[1] - goal) if math.isfinite(t[1]) else math.inf)[0]
        self._compensation = best - gain
        return best

    def _source_level(self) -> float:
        return self._target.level_of(self._source)

    def _calibrate(self, fmt: str) -> None:
        self._calibrated.add(fmt)
        if not self._audible:
            return
        lossless = self.chain("wav")
        effect = codec_effect(
            self._src, self._source, lossless, fmt,
            weighted=self._target.weighted, workdir=self._workdir,
            options=self._options,
        )  # fmt: skip
        self._headroom[fmt] = max(effect.overshoot_db, 0.0) + LOSSLESS_MARGIN_DB
        if self._target.normalizes:
            self._shift[fmt] = effect.level_loss_db

    def correct(self, fmt: str, m: Measurement) -> bool:
        """Adjust ``fmt`` after measuring its encoded file; True if it should be encoded again."""
        again = False
        if self.ceiling is not None and m.true_peak_db > self.ceiling:
            self._headroom[fmt] = self._headroom.get(fmt, 0.0) + m.true_peak_db - self.ceiling + _CORRECTION_STEP_DB
            again = True
        goal = self._target.goal
        if goal is not None and self._audible and self.ceiling is not None:
            error = goal - self._target.level_of(m)
            if math.isfinite(error) and abs(error) > _LEVEL_ACCURACY_DB:
                self._shift[fmt] = self._shift.get(fmt, 0.0) + error
                again = True
        return again
