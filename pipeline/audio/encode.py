"""Delivery formats: WAV, FLAC, MP3, Opus and M4B.

WAV and FLAC are written by libsndfile (bundled with soundfile). MP3 and Opus go through ffmpeg
when the optional ``imageio-ffmpeg`` wheel is installed (much faster encoders, see
``ffmpeg_io``) and through libsndfile otherwise; M4B needs ffmpeg. Every writer takes the
mastered float32 mono signal block by block, converts the sample rate when its format needs it
(MP3 at 32/44.1/48 kHz, Opus at 48 kHz), writes a temporary file beside the destination and
renames it into place only when complete, so a crash never leaves a half-written final file.
Tags (title, author, album, track) go into every format that carries them. ``decode`` reads a
written file back block by block for re-measurement.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from pipeline.audio.ffmpeg_io import M4B_HINT, FfmpegSink, decode_ffmpeg, ffmetadata, ffmpeg_path
from pipeline.audio.resample import StreamingResampler
from pipeline.audio.tags import Tags, temp_beside
from pipeline.errors import OutputError

__all__ = [
    "FORMATS", "LOSSY", "M4B_HINT", "EncoderOptions", "Sink", "Tags",
    "decode", "ffmetadata", "ffmpeg_path", "open_sink", "output_rate",
]  # fmt: skip

FORMATS = ("wav", "flac", "mp3", "opus", "m4b")
LOSSY = frozenset({"mp3", "opus", "m4b"})
_MP3_RATES = (32000, 44100, 48000)  # MPEG-1 layer III: the only rates that allow >= 192 kbps
_MP3_DELIVERY_RATE = 44100
_OPUS_RATE = 48000
_FFMPEG_FASTER = frozenset({"mp3", "opus"})  # its LAME and libopus builds: 4-5x libsndfile's
_WAV_LIMIT_BYTES = 0xFFFFFFFF - (1 << 16)  # beyond this a RIFF header overflows: use RF64
READ_BLOCK_FRAMES = 1 << 17


def output_rate(fmt: str, sample_rate: int) -> int:
    """The sample rate a format is written at for a source at ``sample_rate``."""
    if fmt == "mp3" and sample_rate not in _MP3_RATES:
        return _MP3_DELIVERY_RATE
    if fmt == "opus":
        return _OPUS_RATE
    return sample_rate


class Sink(Protocol):
    """Receives the mastered signal; ``close`` finishes the file and moves it into place."""

    path: Path

    def write(self, block: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class SoundfileSink:
    """WAV / FLAC (16-bit PCM), MP3 (CBR) and Opus through libsndfile."""

    def __init__(
        self,
        fmt: str,
        path: Path,
        sample_rate: int,
        tags: Tags,
        *,
        mp3_bitrate_kbps: int,
        frames: int,
    ) -> None:
        self.path = path
        self._fmt = fmt
        self._tags = tags
        rate = output_rate(fmt, sample_rate)
        self._resampler = StreamingResampler(sample_rate, rate)
        self._temp = temp_beside(path)
        options: dict[str, object] = {}
        if fmt == "wav":
            container = "WAV" if frames * 2 <= _WAV_LIMIT_BYTES else "RF64"
            kind, subtype = container, "PCM_16"
        elif fmt == "flac":
            kind, subtype = "FLAC", "PCM_16"
        elif fmt == "mp3":
            kind, subtype = "MP3", "MPEG_LAYER_III"
            # libsndfile maps compression 0..1 linearly onto 320..32 kbps (MPEG-1) and truncates;
            # aim half a kbps above the wanted rate so the truncation lands on it.
            level = (320.0 - mp3_bitrate_kbps - 0.5) / 288.0
            options = {"compression_level": min(max(level, 0.0), 1.0), "bitrate_mode": "CONSTANT"}
        else:
            kind, subtype = "OGG", "OPUS"
        try:
            self._file = sf.SoundFile(
                self._temp,
                "w",
                rate,
                1,
                subtype,
                format=kind,
                **options,
            )
        except (sf.LibsndfileError, OSError) as exc:
            raise OutputError(f"{path}: cannot write {fmt}: {exc}") from None
        if fmt != "mp3":  # libsndfile writes ID3 as Latin-1 only; mutagen tags MP3 afterwards
            for key, value in (
                ("title", tags.file_title),
                ("artist", tags.author),
                ("album", tags.file_album),
                ("tracknumber", tags.track_text),
            ):
                if value:
                    setattr(self._file, key, value)

    def write(self, block: np.ndarray) -> None:
        self._file.write(self._resampler.process(block))

    def close(self) -> None:
        try:
            self._file.write(self._resampler.flush())
            self._file.close()
            if self._fmt == "mp3":
                _tag_mp3(self._temp, self._tags)
            os.replace(self._temp, self.path)
        except (sf.LibsndfileError, OSError) as exc:
            self.abort()
            raise OutputError(f"{self.path}: cannot write {self._fmt}: {exc}") from None

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()
        with contextlib.suppress(OSError):
            self._temp.unlink()


def _tag_mp3(path: Path, tags: Tags) -> None:
    """ID3v2.3 tags in UTF-16 (read by every player), written after encoding."""
    from mutagen.id3 import ID3, TALB, TIT2, TPE1, TRCK

    frames = [
        (TIT2, tags.file_title),
        (TPE1, tags.author),
        (TALB, tags.file_album),
        (TRCK, tags.track_text),
    ]
    id3 = ID3()
    for frame, value in frames:
        if value:
            id3.add(frame(encoding=1, text=[value]))
    if len(id3):
        id3.save(path, v2_version=3)


@dataclass(frozen=True)
class EncoderOptions:
    """``ffmpeg_encoders``: write MP3 and Opus through ffmpeg when it is installed (False: always
    libsndfile, slower but with no subprocess)."""

    mp3_bitrate_kbps: int = 192
    ffmpeg_encoders: bool = True


def open_sink(
    fmt: str,
    path: Path,
    sample_rate: int,
    tags: Tags,
    *,
    frames: int,
    options: EncoderOptions = EncoderOptions(),
    chapters: Sequence[tuple[str, int, int]] = (),
) -> Sink:
    """A writer for ``fmt`` at ``path`` (written under a temporary name until ``close``)."""
    if fmt not in FORMATS:
        raise OutputError(f"{path}: unknown audio format {fmt!r} (known: {', '.join(FORMATS)})")
    kbps = options.mp3_bitrate_kbps
    via_ffmpeg = fmt in _FFMPEG_FASTER and options.ffmpeg_encoders and ffmpeg_path() is not None
    if fmt == "m4b" or via_ffmpeg:
        rate = output_rate(fmt, sample_rate)
        return FfmpegSink(fmt, path, sample_rate, rate, tags, mp3_bitrate_kbps=kbps, chapters=chapters)
    return SoundfileSink(fmt, path, sample_rate, tags, mp3_bitrate_kbps=kbps, frames=frames)


def decode(path: Path, fmt: str, *, block_frames: int = READ_BLOCK_FRAMES) -> tuple[int, Iterator[np.ndarray]]:
    """Sample rate and float32 mono blocks of a written file (M4B through ffmpeg)."""
    if fmt == "m4b":
        return decode_ffmpeg(path, block_frames)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, OSError) as exc:
        raise OutputError(f"{path}: cannot read back {fmt}: {exc}") from None

    def blocks() -> Iterator[np.ndarray]:
        with sf.SoundFile(str(path)) as f:
            while True:
                data = f.read(block_frames, dtype="float32", always_2d=True)
                if not len(data):
                    return
                yield data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]

    return info.samplerate, blocks()
