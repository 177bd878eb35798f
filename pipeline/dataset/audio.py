"""Clip audio: read a slice of a chapter file, resample, make it 16-bit, write it atomically.

Only the slice of a clip is ever in memory (soundfile seeks to it), never a whole chapter.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from pipeline.errors import InputError, OutputError
from pipeline.fsutil import atomic_path

# The dataset loudness profile: no change beyond a gain that keeps peaks at or below -1 dBFS.
PEAK_CEILING = 10 ** (-1.0 / 20)
_FADE_MS = 3.0  # a cut falls in a pause, but a fade makes sure it can never click
_BLOCK = 1 << 16


def _open_error(path: Path, exc: Exception) -> InputError:
    return InputError(f"{path}: cannot read audio ({exc})")


def duration_ms(path: Path) -> int:
    """The length of a mono audio file in ms; InputError for a missing, unreadable or
    multi-channel file."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError) as exc:
        raise _open_error(path, exc) from None
    if info.channels != 1:
        raise InputError(f"{path}: expected mono chapter audio, found {info.channels} channels")
    return round(info.frames * 1000 / info.samplerate)


def peak_level(paths: Iterable[Path]) -> float:
    """The largest absolute sample over all ``paths``, read block by block."""
    peak = 0.0
    for path in paths:
        try:
            with sf.SoundFile(str(path)) as source:
                for block in source.blocks(_BLOCK, dtype="float32"):
                    if len(block):
                        peak = max(peak, float(np.max(np.abs(block))))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise _open_error(path, exc) from None
    return peak


def peak_safe_gain(peak: float) -> float:
    """A gain that brings ``peak`` down to the ceiling; never a boost."""
    return min(1.0, PEAK_CEILING / peak) if peak > 0 else 1.0


def read_slice(path: Path, start_ms: int, end_ms: int) -> tuple[np.ndarray, int]:
    """Samples ``[start_ms, end_ms)`` of a mono file as float32, and its sample rate."""
    try:
        with sf.SoundFile(str(path)) as source:
            rate = int(source.samplerate)
            first = min(round(start_ms * rate / 1000), source.frames)
            stop = min(round(end_ms * rate / 1000), source.frames)
            source.seek(first)
            samples = source.read(max(0, stop - first), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise _open_error(path, exc) from None
    return samples[:, 0], rate


def to_pcm16(samples: np.ndarray, source_rate: int, target_rate: int, *, gain: float) -> np.ndarray:
    """Resample (polyphase), apply ``gain`` and short edge fades, and quantize to int16."""
    x = np.asarray(samples, dtype=np.float64)
    if source_rate != target_rate and len(x):
        common = math.gcd(source_rate, target_rate)
        x = resample_poly(x, target_rate // common, source_rate // common)
    x = x * gain
    fade = min(round(_FADE_MS * target_rate / 1000), len(x) // 2)
    if fade > 0:
        ramp = (np.arange(fade) + 0.5) / fade
        x[:fade] *= ramp
        x[-fade:] *= ramp[::-1]
    return np.clip(np.rint(x * 32767.0), -32768, 32767).astype(np.int16)


def write_wav16(path: Path, samples: np.ndarray, rate: int) -> None:
    """A mono 16-bit PCM WAV, written to a temporary file and renamed into place."""
    try:
        with atomic_path(path) as tmp:
            sf.write(str(tmp), samples, rate, subtype="PCM_16", format="WAV")
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise OutputError(f"{path}: cannot write ({exc})") from None


def place_copy(source: Path, dest: Path) -> None:
    """Make ``dest`` hold the same file as ``source``: a hard link when the filesystem allows
    (no extra space), a copy otherwise; atomic either way."""
    try:
        if dest.exists() and os.path.samefile(source, dest):
            return
    except OSError:
        pass
    try:
        with atomic_path(dest) as tmp:
            tmp.unlink()
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
    except OSError as exc:
        raise OutputError(f"{dest}: cannot write ({exc.strerror or exc})") from None
