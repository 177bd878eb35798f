"""Content-addressed store of synthesized chunks: the reason nothing is paid for twice.

The key is a hash of exactly what determines a chunk's audio: the engine's identity (kind,
model, voice, language, speed, stability, sample rate, encoding) and the chunk's spoken words.
The spoken words are the text after normalization and the lexicon, so they stand in for the
lexicon version chunk by chunk: a lexicon edit invalidates only the chunks whose spoken words
it changes. File paths, job names, chunk ids and output settings are deliberately not in the
key, so moving a manuscript, renaming a job or changing the subtitle style re-synthesizes
nothing, and editing one paragraph invalidates only the chunks whose spoken text changed.

An entry is one file, written to a temporary name and renamed into place (atomic on POSIX), so
two runs sharing a cache can only ever see a whole entry. It ends with a SHA-256 of everything
before it (header, word timings and audio), checked on every read: a corrupt or truncated entry
is deleted and reported as a miss, never used.
"""

from __future__ import annotations

import contextlib
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

from pipeline.errors import OutputError
from pipeline.models import ChunkAudio, WordTiming

# Entry layout: MAGIC, u32 header length, JSON header, int16 PCM, SHA-256 of all of the former.
_MAGIC = b"NRTC\x02"
_HEADER_LEN = struct.Struct("<I")
_DIGEST_LEN = hashlib.sha256().digest_size
FORMAT_VERSION = 2  # of the entry file; a file of another version reads as a miss
KEY_VERSION = 1  # of what the key hashes; changing it orphans every entry
# A temporary entry this old belongs to a writer that was killed; younger ones may be live.
_STALE_TEMP_S = 3600


def cache_key(identity: Mapping[str, Any], spoken_words: Sequence[str]) -> str:
    """sha256 over a canonical JSON of the engine identity and the chunk's spoken words."""
    payload = {"v": KEY_VERSION, "engine": dict(identity), "words": list(spoken_words)}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _file_mode() -> int:
    # mkstemp makes files private (0600); an entry should read like any file the user writes.
    # Read once at import: os.umask can only be read by setting it, which races with threads.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    bytes: int
    oldest: float | None  # mtime = last use, seconds since the epoch
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
        except OSError:  # missing, or unreadable: either way not something we can use
            return None
        decoded = self._decode(blob, key)
        if decoded is None:
            with contextlib.suppress(OSError):
                path.unlink()  # corrupt: never use, re-synthesize
            return None
        audio, exact = decoded
        if need_exact_timings and not exact:
            return None
        with contextlib.suppress(OSError):  # a concurrent prune may have removed it meanwhile
            os.utime(path)  # last use, for pruning by age
        return audio

    def has(self, key: str, *, need_exact_timings: bool = True) -> bool:
        """Whether ``key`` looks present, from the header and the file size alone: cheap enough
        to ask for every chunk of a book (estimates). A truncated entry is caught here; a
        flipped bit only by ``get``, which is what any use of the audio goes through."""
        path = self.path_for(key)
        start = len(_MAGIC) + _HEADER_LEN.size
        try:
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                prefix = f.read(start)
                if len(prefix) < start or not prefix.startswith(_MAGIC):
                    return False
                (head_len,) = _HEADER_LEN.unpack_from(prefix, len(_MAGIC))
                header = json.loads(f.read(head_len))
            expected = start + head_len + 2 * int(header["num_samples"]) + _DIGEST_LEN
            exact = bool(header["exact_timings"])
            return header["key"] == key and size == expected and (exact or not need_exact_timings)
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def put(self, key: str, audio: ChunkAudio, *, exact_timings: bool = True) -> Path:
        """Store ``audio`` under ``key``; raises OutputError when the cache folder is unusable."""
        pcm = np.ascontiguousarray(audio.samples, dtype="<i2").tobytes()
        header = {
            "v": FORMAT_VERSION,
            "key": key,
            "sample_rate": audio.sample_rate,
            "num_samples": len(audio.samples),
            "timings": [[t.start_ms, t.end_ms] for t in audio.timings],
            "exact_timings": exact_timings,
        }
        head = json.dumps(header, separators=(",", ":")).encode("utf-8")
        body = _MAGIC + _HEADER_LEN.pack(len(head)) + head + pcm
        blob = body + hashlib.sha256(body).digest()
        path = self.path_for(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        except OSError as exc:
            raise OutputError(f"{self.root}: cannot write the chunk cache (cache_dir): {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), _FILE_MODE)
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise OutputError(f"{self.root}: cannot write the chunk cache (cache_dir): {exc.strerror or exc}") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @staticmethod
    def _decode(blob: bytes, key: str) -> tuple[ChunkAudio, bool] | None:
        start = len(_MAGIC) + _HEADER_LEN.size
        if len(blob) < start + _DIGEST_LEN or not blob.startswith(_MAGIC):
            return None
        body, digest = blob[:-_DIGEST_LEN], blob[-_DIGEST_LEN:]
        if hashlib.sha256(body).digest() != digest:
            return None
        (head_len,) = _HEADER_LEN.unpack_from(body, len(_MAGIC))
        try:
            header = json.loads(body[start : start + head_len])
            pcm = body[start + head_len :]
            if header["v"] != FORMAT_VERSION or header["key"] != key:
                return None
            if len(pcm) != 2 * header["num_samples"]:
                return None
            timings = tuple(WordTiming(int(a), int(b)) for a, b in header["timings"])
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
            return ChunkAudio(samples, int(header["sample_rate"]), timings), bool(header["exact_timings"])
        except (ValueError, KeyError, TypeError):
            return None

    def _entries(self) -> Iterator[tuple[Path, os.stat_result]]:
        """Every entry with its stat; entries removed while we look are skipped."""
        if not self.objects.is_dir():
            return
        for path in self.objects.glob("*/*.chunk"):
            try:
                yield path, path.stat()
            except OSError:
                continue

    def stats(self) -> CacheStats:
        count = size = 0
        oldest: float | None = None
        newest: float | None = None
        for _, st in self._entries():
            count += 1
            size += st.st_size
            oldest = st.st_mtime if oldest is None else min(oldest, st.st_mtime)
            newest = st.st_mtime if newest is None else max(newest, st.st_mtime)
        return CacheStats(count, size, oldest, newest)

    def prune(self, *, older_than_days: float | None = None, max_bytes: int | None = None) -> int:
        """Delete entries unused for ``older_than_days``, then the least recently used until the
        store fits ``max_bytes``; returns how many went. Temporary files left by killed writers
        go too. Safe beside a running job: it only loses entries it would re-synthesize."""
        removed = 0
        now = time.time()
        if self.objects.is_dir():
            for tmp in self.objects.glob("*/.tmp-*"):
                with contextlib.suppress(OSError):
                    if now - tmp.stat().st_mtime > _STALE_TEMP_S:
                        tmp.unlink()
        entries = sorted((st.st_mtime, st.st_size, p) for p, st in self._entries())
        keep: list[tuple[float, int, Path]] = []
        for mtime, size, p in entries:
            if older_than_days is not None and now - mtime > older_than_days * 86400:
                p.unlink(missing_ok=True)
                removed += 1
            else:
                keep.append((mtime, size, p))
        if max_bytes is not None:
            total = sum(size for _, size, _ in keep)
            for _, size, p in keep:  # least recently used first
                if total <= max_bytes:
                    break
                p.unlink(missing_ok=True)
                total -= size
                removed += 1
        return removed
