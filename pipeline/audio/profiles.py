"""Loudness profiles: what a delivered file must measure, and the check that it does.

Numbers come from ../shared/STANDARDS.md: ``audiobook`` is ACX's technical target (RMS-based,
with a noise floor and room tone at both ends), ``podcast``/``ebu``/``speech`` are integrated
loudness targets with a true-peak ceiling, ``dataset`` only turns down what would clip, and
``none`` leaves the audio alone. A job may override the level (``target_lufs`` or ``rms_db``)
and the ceiling (``true_peak_db``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from pipeline.audio.loudness import Measurement
from pipeline.config import AudioConfig
from pipeline.errors import ConfigError

TOLERANCE_LU = 1.0  # published tolerance of the loudness targets (Apple, EBU R128)
ROOM_TONE_DB = -75.0  # well under ACX's -60 dBFS noise floor limit, well over digital zero
# ACX asks for 0.5-1 s of room tone at the head and 1-5 s at the tail. Assembly leaves 750 ms and
# 2 s; the check accepts the minimum, so a codec's pre-echo of a few ms before the first word
# (AAC frames are 1024 samples) does not fail a file that has the room tone ACX asks for.
_ACX_HEAD_CHECK_MS = 500
_ACX_TAIL_CHECK_MS = 1000


@dataclass(frozen=True, kw_only=True)
class MasteringTarget:
    """What one output file must meet. ``target_lufs`` or ``rms_db`` (at most one) sets the
    level; ``true_peak_db`` the ceiling; ``head_ms``/``tail_ms`` the room tone the assembly stage
    must leave at the ends."""

    profile: str
    target_lufs: float | None
    rms_db: float | None
    true_peak_db: float | None
    noise_floor_db: float | None
    head_ms: int
    tail_ms: int
    rms_range: tuple[float, float] | None = None  # accepted RMS window (ACX: -23..-18)
    room_tone_db: float | None = None  # seeded noise bed so no gap is digital zero (audiobook)
    max_minutes: float | None = None  # longest file the profile accepts (ACX: 120)
    peak_safe_only: bool = False  # only ever turn down, and only as far as the peaks need
    head_check_ms: int = 0  # room tone that must measure under the noise floor limit
    tail_check_ms: int = 0

    @classmethod
    def from_config(cls, audio: AudioConfig) -> MasteringTarget:
        """The job's profile with its overrides; ConfigError for contradictory settings."""
        target = PROFILES[audio.loudness]
        if audio.target_lufs is not None and audio.rms_db is not None:
            raise ConfigError("audio: give target_lufs or rms_db, not both")
        level_key = "target_lufs" if audio.target_lufs is not None else "rms_db"
        level = audio.target_lufs if audio.target_lufs is not None else audio.rms_db
        if level is not None and audio.loudness in ("none", "dataset"):
            raise ConfigError(
                f"audio.{level_key}: the '{audio.loudness}' profile keeps the level as it is;"
                " choose another audio.loudness to set one"
            )
        if audio.true_peak_db is not None:
            if audio.loudness == "none":
                raise ConfigError(
                    "audio.true_peak_db: the 'none' profile leaves the audio untouched;"
                    " choose another audio.loudness to set a ceiling"
                )
            target = replace(target, true_peak_db=audio.true_peak_db)
        if audio.target_lufs is not None:
            target = replace(target, target_lufs=audio.target_lufs, rms_db=None, rms_range=None)
        if audio.rms_db is not None:
            window = target.rms_range
            inside = window is not None and window[0] <= audio.rms_db <= window[1]
            target = replace(
                target,
                rms_db=audio.rms_db,
                target_lufs=None,
                rms_range=window if inside else (audio.rms_db - 1.0, audio.rms_db + 1.0),
            )
        return target

    @property
    def normalizes(self) -> bool:
        """True when the profile sets a level (not just a ceiling)."""
        return self.target_lufs is not None or self.rms_db is not None

    @property
    def weighted(self) -> bool:
        """True when the level is integrated loudness (LUFS) rather than RMS."""
        return self.target_lufs is not None

    def level_of(self, m: Measurement) -> float:
        """The measured value this profile's level target is about."""
        return m.integrated_lufs if self.weighted else m.rms_db

    @property
    def goal(self) -> float | None:
        return self.target_lufs if self.target_lufs is not None else self.rms_db


PROFILES: dict[str, MasteringTarget] = {
    "audiobook": MasteringTarget(
        profile="audiobook", target_lufs=None, rms_db=-20.0, true_peak_db=-3.0,
        noise_floor_db=-60.0, head_ms=750, tail_ms=2000, rms_range=(-23.0, -18.0),
        room_tone_db=ROOM_TONE_DB, max_minutes=120.0,
        head_check_ms=_ACX_HEAD_CHECK_MS, tail_check_ms=_ACX_TAIL_CHECK_MS,
    ),
    "podcast": MasteringTarget(
        profile="podcast", target_lufs=-16.0, rms_db=None, true_peak_db=-1.0,
        noise_floor_db=None, head_ms=0, tail_ms=0,
    ),
    "ebu": MasteringTarget(
        profile="ebu", target_lufs=-23.0, rms_db=None, true_peak_db=-1.0,
        noise_floor_db=None, head_ms=0, tail_ms=0,
    ),
    "speech": MasteringTarget(
        profile="speech", target_lufs=-18.0, rms_db=None, true_peak_db=-1.0,
        noise_floor_db=None, head_ms=0, tail_ms=0,
    ),
    "dataset": MasteringTarget(
        profile="dataset", target_lufs=None, rms_db=None, true_peak_db=-1.0,
        noise_floor_db=None, head_ms=0, tail_ms=0, peak_safe_only=True,
    ),
    "none": MasteringTarget(
        profile="none", target_lufs=None, rms_db=None, true_peak_db=None,
        noise_floor_db=None, head_ms=0, tail_ms=0,
    ),
}  # fmt: skip


def problems(m: Measurement, target: MasteringTarget, source: Measurement) -> list[str]:
    """Every way the measured file ``m`` misses ``target`` (empty: it meets the profile)."""
    found: list[str] = []
    audible = math.isfinite(source.rms_db)
    if not audible:
        found.append("the audio is silent")
    lufs = target.target_lufs
    if lufs is not None and audible and not math.isfinite(m.integrated_lufs):
        found.append("no integrated loudness: shorter than one 400 ms block, or quieter than -70 LUFS")
    elif lufs is not None and audible and not abs(m.integrated_lufs - lufs) <= TOLERANCE_LU:
        found.append(f"integrated loudness {m.integrated_lufs:.1f} LUFS, target {lufs:g} ±{TOLERANCE_LU:g}")
    if target.rms_range is not None and audible:
        low, high = target.rms_range
        if not low <= m.rms_db <= high:
            found.append(f"RMS {m.rms_db:.1f} dBFS outside {low:g}..{high:g}")
    ceiling = target.true_peak_db
    if ceiling is not None and m.true_peak_db > ceiling:
        found.append(f"true peak {m.true_peak_db:.2f} dBTP over the {ceiling:g} ceiling")
    if target.profile == "none" and m.sample_peak_db >= 0.0:
        found.append("samples at or over full scale (clipped)")
    limit = target.noise_floor_db
    if limit is not None:
        if m.noise_floor_db > limit:
            found.append(f"noise floor {m.noise_floor_db:.1f} dBFS above {limit:g}")
        ends = (
            ("head", "first", target.head_check_ms, m.head_rms_db),
            ("tail", "last", target.tail_check_ms, m.tail_rms_db),
        )
        for where, which, ms, level in ends:
            if ms and level > limit:
                found.append(f"no room tone at the {where}: the {which} {ms} ms measure {level:.1f} dBFS")
    if target.max_minutes is not None and m.duration_s > target.max_minutes * 60:
        found.append(f"{m.duration_s / 60:.0f} min long, over the {target.max_minutes:g} min per file limit")
    return found
