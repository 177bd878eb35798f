"""Content-addressed store of synthesized chunks: the reason nothing is paid for twice.

The key is a hash of exactly what determines a chunk's audio: the engine's identity (kind,
model, voice, language, speed, stability, sample rate, encoding) and the chunk's spoken words.
File paths, job names, chunk ids and output settings are deliberately not in it, so moving a
manuscript, renaming a job or changing the subtitle style re-synthesizes nothing, and editing
one paragraph invalidates only the chunks whose spoken text changed.

An entry is one file, written to a temporary name and renamed into place (atomic on POSIX), so
two runs sharing a cache can only ever see a whole entry. Every read verifies a checksum of the
audio and the header; a corrupt or truncated entry is deleted and reported as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.models import ChunkAudio, WordTiming

_MAGIC = b"NRTC\x01"
_HEADER_LEN = struct.Struct("<I")
FORMAT_VERSION = 1


def cache_key(identity: Mapping[str, Any], spoken_words: Sequence[str]) -> str:
    """sha256 over a canonical JSON of the engine identity and the chunk's spoken words."""
    payload = {"v": FORMAT_VERSION, "engine": dict(identity), "words": list(spoken_words)}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    bytes: int
    oldest: float | None
    newest: float | None


class ChunkCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"

    def path_for(self, key: str) -> Path:
        return self.objects / key[:2] / f"{key}.chunk"

    def get(self, key: str, *, need_exact_timings: bool = True) -> ChunkAudio | None:
        """The entry for ``key``, or None. Entries whose timings are only estimates (an engine
        asked without timestamps) do not satisfy a caller that needs real word timings."""
        path = self.path_for(key)
        try:
            blob = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        audio, exact = self._decode(blob, key) or (None, False)
        if audio is None:
            path.unlink(missing_ok=True)  # corrupt: never use, re-synthesize
            return None
        if need_exact_timings and not exact:
            return None
        os.utime(path)  # last use, for pruning by age
        return audio

    def has(self, key: str, *, need_exact_timings: bool = True) -> bool:
        return self.get(key, need_exact_timings=need_exact_timings) is not None

    def put(self, key: str, audio: ChunkAudio, *, exact_timings: bool = True) -> Path:
        pcm = np.ascontiguousarray(audio.samples, dtype="<i2").tobytes()
        header = {
            "v": FORMAT_VERSION,
            "key": key,
            "sample_rate": audio.sample_rate,
            "num_samples": len(audio.samples),
            "timings": [[t.start_ms, t.end_ms] for t in audio.timings],
            "exact_timings": exact_timings,
            "sha256": hashlib.sha256(pcm).hexdigest(),
        }
        head = json.dumps(header, separators=(",", ":")).encode("utf-8")
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC + _HEADER_LEN.pack(len(head)) + head + pcm)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @staticmethod
    def _decode(blob: bytes, key: str) -> tuple[ChunkAudio, bool] | None:
        start = len(_MAGIC) + _HEADER_LEN.size
        if len(blob) < start or not blob.startswith(_MAGIC):
            return None
        (head_len,) = _HEADER_LEN.unpack_from(blob, len(_MAGIC))
        try:
            header = json.loads(blob[start : start + head_len])
            pcm = blob[start + head_len :]
            if header["v"] != FORMAT_VERSION or header["key"] != key:
                return None
            if len(pcm) != 2 * header["num_samples"]:
                return None
            if hashlib.sha256(pcm).hexdigest() != header["sha256"]:
                return None
            timings = tuple(WordTiming(int(a), int(b)) for a, b in header["timings"])
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
            return ChunkAudio(samples, int(header["sample_rate"]), timings), bool(header["exact_timings"])
        except (ValueError, KeyError, TypeError):
            return None

    def _entries(self) -> Iterator[Path]:
        if self.objects.is_dir():
            yield from self.objects.glob("*/*.chunk")

    def stats(self) -> CacheStats:
        count = size = 0
        oldest: float | None = None
        newest: float | None = None
        for p in self._entries():
            st = p.stat()
            count += 1
            size += st.st_size
            oldest = st.st_mtime if oldest is None else min(oldest, st.st_mtime)
            newest = st.st_mtime if newest is None else max(newest, st.st_mtime)
        return CacheStats(count, size, oldest, newest)

    def prune(self, *, older_than_days: float | None = None, max_bytes: int | None = None) -> int:
        """Delete entries unused for ``older_than_days``, then the least recently used until the
        store fits ``max_bytes``. Leftover temporary files from killed writers go too."""
        removed = 0
        now = time.time()
        for tmp in self.objects.glob("*/.tmp-*") if self.objects.is_dir() else ():
            if now - tmp.stat().st_mtime > 3600:
                tmp.unlink(missing_ok=True)
        entries = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in self._entries())
        keep: list[tuple[float, int, Path]] = []
        for mtime, size, p in entries:
            if older_than_days is not None and now - mtime > older_than_days * 86400:
                p.unlink(missing_ok=True)
                removed += 1
            else:
                keep.append((mtime, size, p))
        if max_bytes is not None:
            total = sum(size for _, size, _ in keep)
            for _, size, p in keep:  # oldest first
                if total <= max_bytes:
                    break
                p.unlink(missing_ok=True)
                total -= size
                removed += 1
        return removed
