"""The second mastering pass: gain, room tone and limiter, streamed into every encoder at once.

Each format gets a ``Chain`` (gain, limiter ceiling, room tone); formats with the same chain share
one limiter. Encoders run on their own threads (libsndfile and ffmpeg release the GIL), so the
limiter and, say, the MP3 encoder use both cores. Memory is a few blocks, whatever the length.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.audio.encode import EncoderOptions, Sink, Tags, open_sink
from pipeline.audio.limiter import TruePeakLimiter
from pipeline.errors import OutputError

BLOCK_FRAMES = 1 << 17
# Pseudo-format of ``render``'s plan: the chain's output as a float32 WAV in the working folder
# (mastered chapters, from which the book is built without mastering it again).
MASTER_COPY = "master-copy"
_ROOM_TONE_SEED = 0x6E617272  # fixed: the same book always gets the same room tone
_ROOM_TONE_PERIOD = 1 << 19  # ~22 s at 24 kHz; far too long and too quiet to hear as a loop


@dataclass(frozen=True)
class Chain:
    gain_db: float
    ceiling_db: float | None  # true-peak limiter ceiling; None: gain only
    room_tone_db: float | None = None


def source_blocks(src: Path, *, start: int = 0, frames: int = -1) -> tuple[int, Iterator[np.ndarray]]:
    """Sample rate and float32 blocks of a mono source file (``frames`` from ``start``)."""
    try:
        info = sf.info(str(src))
    except (sf.LibsndfileError, OSError) as exc:
        raise OutputError(f"{src}: cannot read the audio to master: {exc}") from None
    if info.channels != 1:
        raise OutputError(f"{src}: expected mono audio to master, found {info.channels} channels")

    def blocks() -> Iterator[np.ndarray]:
        remaining = info.frames - start if frames < 0 else frames
        with sf.SoundFile(str(src)) as f:
            f.seek(start)
            while remaining > 0:
                data = f.read(min(BLOCK_FRAMES, remaining), dtype="float32")
                if not len(data):
                    return
                remaining -= len(data)
                yield data

    return info.samplerate, blocks()


@functools.lru_cache(maxsize=4)
def _room_tone_table(level_db: float) -> np.ndarray:
    table = np.random.default_rng(_ROOM_TONE_SEED).standard_normal(_ROOM_TONE_PERIOD)
    table *= 10.0 ** (level_db / 20.0) / np.sqrt(np.mean(table * table))
    out = table.astype(np.float32)
    out.setflags(write=False)  # shared by every RoomTone at this level
    return out


def room_tone_peak(level_db: float) -> float:
    """The largest |sample| of the room tone at ``level_db``."""
    return float(np.abs(_room_tone_table(level_db)).max())


class RoomTone:
    """A quiet, seeded white-noise bed (``level_db`` RMS) so no gap is digital silence, which
    ACX rejects; identical for the same position in the same file on every run."""

    def __init__(self, level_db: float) -> None:
        self._table = _room_tone_table(level_db)
        self._position = 0

    def add(self, block: np.ndarray) -> np.ndarray:
        index = (self._position + np.arange(len(block))) % _ROOM_TONE_PERIOD
        self._position = (self._position + len(block)) % _ROOM_TONE_PERIOD
        return block + self._table[index]


class Processor:
    """Gain, room tone and limiter for one chain, streaming; output length equals input."""

    def __init__(self, chain: Chain, sample_rate: int) -> None:
        self._gain = np.float32(10.0 ** (chain.gain_db / 20.0))
        self._tone = RoomTone(chain.room_tone_db) if chain.room_tone_db is not None else None
        self.limiter = TruePeakLimiter(sample_rate, chain.ceiling_db) if chain.ceiling_db is not None else None

    def process(self, block: np.ndarray) -> np.ndarray:
        out = block * self._gain
        if self._tone is not None:
            out = self._tone.add(out)
        return self.limiter.process(out) if self.limiter is not None else out

    def flush(self) -> np.ndarray:
        return self.limiter.flush() if self.limiter is not None else np.zeros(0, dtype=np.float32)

    @property
    def max_reduction_db(self) -> float:
        return self.limiter.max_reduction_db if self.limiter is not None else 0.0


class _BackgroundSink:
    """Runs a sink's writes on a thread, a few blocks behind the producer."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=f"encode {sink.path.name}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (block := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain so the producer never blocks
            try:
                self._sink.write(block)
            except BaseException as exc:  # re-raised in the producer's thread
                self._error = exc

    def write(self, block: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        if len(block):
            self._queue.put(block)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            self._sink.abort()
            raise self._error
        self._sink.close()

    def abort(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._sink.abort()


class _FloatCopySink:
    """The mastered signal as float32 WAV (RF64 past 4 GB), exactly as it left the limiter."""

    def __init__(self, path: Path, sample_rate: int, frames: int) -> None:
        self.path = path
        container = "WAV" if frames * 4 < 0xFFFF0000 else "RF64"
        try:
            self._file = sf.SoundFile(str(path), "w", sample_rate, 1, "FLOAT", format=container)
        except (sf.LibsndfileError, OSError) as exc:
            raise OutputError(f"{path}: cannot write the mastered working copy: {exc}") from None

    def write(self, block: np.ndarray) -> None:
        self._file.write(block)

    def close(self) -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def render(
    src: Path,
    plan: dict[str, Chain],
    paths: dict[str, Path],
    *,
    tags: Tags,
    options: EncoderOptions,
    chapters: Sequence[tuple[str, int, int]],
) -> dict[str, float]:
    """Write every format in ``plan`` in one pass; returns each format's deepest limiting (dB)."""
    rate, blocks = source_blocks(src)
    frames = sf.info(str(src)).frames
    groups: dict[Chain, list[str]] = {}
    for fmt, chain in plan.items():
        groups.setdefault(chain, []).append(fmt)
    processors = {chain: Processor(chain, rate) for chain in groups}
    sinks: dict[str, _BackgroundSink] = {}
    try:
        for fmt in plan:
            writer: Sink = (
                _FloatCopySink(paths[fmt], rate, frames) if fmt == MASTER_COPY else
                open_sink(
                    fmt, paths[fmt], rate, tags,
                    frames=frames, options=options, chapters=chapters,
                )
            )  # fmt: skip
            sinks[fmt] = _BackgroundSink(writer)
        for block in blocks:
            for chain, processor in processors.items():
                out = processor.process(block)
                for fmt in groups[chain]:
                    sinks[fmt].write(out)
        for chain, processor in processors.items():
            out = processor.flush()
            for fmt in groups[chain]:
                sinks[fmt].write(out)
        for fmt in plan:
            sinks.pop(fmt).close()
    finally:
        for sink in sinks.values():
            sink.abort()
    return {fmt: processors[chain].max_reduction_db for chain, fmts in groups.items() for fmt in fmts}
