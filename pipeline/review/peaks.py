"""Waveform peaks of an audio file, computed on the server in one streaming pass and cached, so
the browser never decodes a whole chapter to draw it."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from pipeline.fsutil import write_json_atomic

PEAKS_PER_SECOND = 50
MAX_PEAKS = 6000
_BLOCK = 1 << 16


def compute_peaks(path: Path) -> dict[str, Any]:
    """Per bucket, the lowest and highest sample as integers in -127..127 (plenty for a
    picture), over the first channel; buckets of equal length spanning the file."""
    with sf.SoundFile(str(path)) as f:
        frames, rate = f.frames, f.samplerate
        duration = frames / rate if rate else 0.0
        buckets = max(1, min(MAX_PEAKS, math.ceil(duration * PEAKS_PER_SECOND)))
        per = max(1, math.ceil(frames / buckets))
        lo = np.zeros(buckets, dtype=np.float32)
        hi = np.zeros(buckets, dtype=np.float32)
        pos = 0
        for block in f.blocks(blocksize=_BLOCK - _BLOCK % per or per, dtype="float32", always_2d=True):
            mono = block[:, 0]
            first = pos // per
            usable = len(mono) - len(mono) % per
            if usable:
                shaped = mono[:usable].reshape(-1, per)
                n = min(len(shaped), buckets - first)
                lo[first : first + n] = np.minimum(lo[first : first + n], shaped[:n].min(axis=1))
                hi[first : first + n] = np.maximum(hi[first : first + n], shaped[:n].max(axis=1))
            if usable < len(mono) and first + usable // per < buckets:  # the short last bucket
                tail, k = mono[usable:], first + usable // per
                lo[k], hi[k] = min(lo[k], tail.min()), max(hi[k], tail.max())
            pos += len(mono)
    scale = lambda a: np.clip(np.round(a * 127), -127, 127).astype(int).tolist()  # noqa: E731
    return {"duration_ms": round(duration * 1000), "sample_rate": rate, "min": scale(lo), "max": scale(hi)}


def cached_peaks(path: Path, cache_dir: Path) -> dict[str, Any]:
    """``compute_peaks`` remembered per file version (size and modification time)."""
    st = path.stat()
    stamp = f"{st.st_size}:{st.st_mtime_ns}"
    name = hashlib.sha256(str(path).encode()).hexdigest()[:20] + ".json"
    entry = cache_dir / name
    try:
        data = json.loads(entry.read_text(encoding="utf-8"))
        if data.get("stamp") == stamp:
            peaks: dict[str, Any] = data["peaks"]
            return peaks
    except (OSError, ValueError, KeyError):
        pass
    peaks = compute_peaks(path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(entry, {"stamp": stamp, "peaks": peaks})
    return peaks
