"""Signals and independent reference meters for the mastering tests.

Speech is real espeak-ng speech from the local engine; synthetic signals are tones, noise and a
loud burst in quiet speech. The reference meters are not ours: ``pyloudnorm`` for integrated
loudness, numpy for RMS and sample peak, ``scipy.signal.resample_poly`` (a longer filter than
ours) for 4x true peak, and ffmpeg for decoding M4B.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
from scipy import signal

from pipeline.audio.encode import ffmpeg_path
from pipeline.tts.local import speak

SR = 24000
SENTENCES = (
    "The keeper climbed the stairs at dusk and lit the great lamp.",
    "Far below, the sea turned over the stones with a sound like slow breathing.",
)


@functools.lru_cache(maxsize=4)
def speech(rate: int = SR) -> np.ndarray:
    """About six seconds of real synthetic speech, float32 in -1..1 (read-only)."""
    parts = [speak(s.split(), voice="en", sample_rate=rate).samples for s in SENTENCES]
    pause = np.zeros(rate // 3, dtype=np.int16)
    joined = np.concatenate([parts[0], pause, parts[1]]).astype(np.float32) / 32768.0
    joined.setflags(write=False)
    return joined


def with_room(x: np.ndarray, rate: int = SR, head_ms: int = 750, tail_ms: int = 2000) -> np.ndarray:
    """Digital silence at the head and tail, as the assembly stage leaves it."""
    head = np.zeros(rate * head_ms // 1000, dtype=np.float32)
    tail = np.zeros(rate * tail_ms // 1000, dtype=np.float32)
    return np.concatenate([head, np.asarray(x, dtype=np.float32), tail])


def db_gain(x: np.ndarray, db: float) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) * 10 ** (db / 20)).astype(np.float32)


def tone(freq: float, seconds: float, peak_db: float, rate: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (10 ** (peak_db / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, rms: float, rate: int = SR, seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(int(seconds * rate))
    return (x * 10 ** (rms / 20)).astype(np.float32)


def burst_in_quiet_speech(rate: int = SR) -> np.ndarray:
    """Speech 20 dB down with a 0.3 s full-scale noise burst in the middle."""
    quiet = db_gain(speech(rate), -20.0)
    burst = noise(0.3, -4.0, rate, seed=7).clip(-1, 1)
    middle = len(quiet) // 2
    return np.concatenate([quiet[:middle], burst, quiet[middle:]])


def write_source(path: Path, x: np.ndarray, rate: int = SR) -> Path:
    sf.write(path, np.asarray(x, dtype=np.float32), rate, subtype="FLOAT")
    return path


def decoded(path: Path) -> tuple[np.ndarray, int]:
    """A written file's samples as float64 mono (M4B through ffmpeg)."""
    if path.suffix == ".m4b":
        exe = ffmpeg_path()
        assert exe is not None
        probe = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True)
        rate = int(next(line for line in probe.stderr.splitlines() if " Hz" in line).split(" Hz")[0].split()[-1])
        raw = subprocess.run(
            [exe, "-v", "error", "-i", str(path), "-f", "f64le", "-ac", "1", "-"],
            capture_output=True,
            check=True,
        ).stdout
        return np.frombuffer(raw, dtype="<f8"), rate
    data, rate = sf.read(str(path), dtype="float64")
    return data, rate


def ref_lufs(x: np.ndarray, rate: int) -> float:
    return float(pyloudnorm.Meter(rate).integrated_loudness(np.asarray(x, dtype=np.float64)))


def ref_rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def ref_sample_peak_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.max(np.abs(np.asarray(x, dtype=np.float64)))))


def ref_true_peak_db(x: np.ndarray) -> float:
    up = signal.resample_poly(np.asarray(x, dtype=np.float64), 4, 1)
    return float(20 * np.log10(max(np.max(np.abs(up)), np.max(np.abs(x)))))
