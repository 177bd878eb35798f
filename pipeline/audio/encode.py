"""Delivery formats: WAV, FLAC, MP3, Opus (libsndfile, bundled with soundfile) and M4B (ffmpeg).

Every writer takes the mastered float32 mono signal block by block, converts the sample rate
when its format needs it (MP3 at 32/44.1/48 kHz, Opus at 48 kHz), writes a temporary file
beside the destination and renames it into place only when complete, so a crash never leaves a
half-written final file. Tags (title, author, album, track) go into every format that carries
them. The matching readers decode a written file block by block for re-measurement.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from pipeline.audio.resample import StreamingResampler
from pipeline.errors import OutputError

FORMATS = ("wav", "flac", "mp3", "opus", "m4b")
LOSSY = frozenset({"mp3", "opus", "m4b"})
_MP3_RATES = (32000, 44100, 48000)  # MPEG-1 layer III: the only rates that allow >= 192 kbps
_MP3_DELIVERY_RATE = 44100
_OPUS_RATE = 48000
AAC_BITRATE_KBPS = 64  # mono speech; what audiobook stores deliver
_WAV_LIMIT_BYTES = 0xFFFFFFFF - (1 << 16)  # beyond this a RIFF header overflows: use RF64
READ_BLOCK_FRAMES = 1 << 17
M4B_HINT = "m4b output needs ffmpeg: install it with pip install 'narrate[m4b]'"


@dataclass(frozen=True, kw_only=True)
class Tags:
    """What a file says about itself. A chapter file's title is its ``chapter_title``; the album
    is ``album`` or else the book ``title``; ``author`` is written as the artist."""

    title: str | None = None
    author: str | None = None
    album: str | None = None
    track: int | None = None
    total_tracks: int | None = None
    chapter_title: str | None = None

    @property
    def file_title(self) -> str | None:
        return self.chapter_title or self.title

    @property
    def file_album(self) -> str | None:
        return self.album or self.title

    @property
    def track_text(self) -> str | None:
        if self.track is None:
            return None
        return f"{self.track}/{self.total_tracks}" if self.total_tracks else str(self.track)


def ffmpeg_path() -> str | None:
    """The ffmpeg binary shipped by the optional ``imageio-ffmpeg`` wheel, or None."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:
        return None


def output_rate(fmt: str, sample_rate: int) -> int:
    """The sample rate a format is written at for a source at ``sample_rate``."""
    if fmt == "mp3" and sample_rate not in _MP3_RATES:
        return _MP3_DELIVERY_RATE
    if fmt == "opus":
        return _OPUS_RATE
    return sample_rate


def _temp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


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
        self._temp = _temp_beside(path)
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


def ffmetadata(tags: Tags, chapters: Sequence[tuple[str, int, int]]) -> str:
    """An ffmpeg metadata file (;FFMETADATA1) with the tags and one [CHAPTER] per chapter."""

    def escape(text: str) -> str:
        for char in "\\=;#\n":
            text = text.replace(char, "\\" + char)
        return text

    lines = [";FFMETADATA1"]
    for key, value in (
        ("title", tags.file_title),
        ("artist", tags.author),
        ("album_artist", tags.author),
        ("album", tags.file_album),
        ("track", tags.track_text),
        ("genre", "Audiobook"),
    ):
        if value:
            lines.append(f"{key}={escape(value)}")
    for title, start_ms, end_ms in chapters:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start_ms}", f"END={end_ms}"]
        lines.append(f"title={escape(title)}")
    return "\n".join(lines) + "\n"


class M4bSink:
    """AAC in an MP4 audiobook container with chapter markers, through ffmpeg. The mastered PCM
    is piped in as it is produced; nothing is held in memory."""

    def __init__(
        self, path: Path, sample_rate: int, tags: Tags, chapters: Sequence[tuple[str, int, int]]
    ) -> None:
        exe = ffmpeg_path()
        if exe is None:
            raise OutputError(f"{path}: {M4B_HINT}")
        self.path = path
        self._temp = _temp_beside(path)
        meta = tempfile.NamedTemporaryFile(  # noqa: SIM115 - must outlive this call
            "w",
            suffix=".txt",
            prefix=".narrate-meta-",
            dir=path.parent,
            delete=False,
            encoding="utf-8",
        )
        with meta:
            meta.write(ffmetadata(tags, chapters))
        self._meta = Path(meta.name)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - ffmpeg's stderr, read on failure
        command = [
            exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0",
            "-f", "ffmetadata", "-i", str(self._meta),
            "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1",
            "-c:a", "aac", "-b:a", f"{AAC_BITRATE_KBPS}k", "-movflags", "+faststart",
            "-f", "ipod", str(self._temp),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=self._log)

    def write(self, block: np.ndarray) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        except BrokenPipeError:
            self._fail()

    def close(self) -> None:
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()
        if self._process.wait() != 0:
            self._fail()
        self._cleanup()
        try:
            os.replace(self._temp, self.path)
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: cannot write m4b: {exc.strerror}") from None

    def _fail(self) -> None:
        self._process.kill()
        self._process.wait()
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        self.abort()
        detail = lines[-1] if lines else f"exit status {self._process.returncode}"
        raise OutputError(f"{self.path}: ffmpeg could not write m4b: {detail}")

    def _cleanup(self) -> None:
        with contextlib.suppress(OSError):
            self._meta.unlink()
        self._log.close()

    def abort(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._cleanup()
        with contextlib.suppress(OSError):
            self._temp.unlink()


def open_sink(
    fmt: str,
    path: Path,
    sample_rate: int,
    tags: Tags,
    *,
    frames: int,
    mp3_bitrate_kbps: int = 192,
    chapters: Sequence[tuple[str, int, int]] = (),
) -> Sink:
    if fmt == "m4b":
        return M4bSink(path, sample_rate, tags, chapters)
    if fmt not in FORMATS:
        raise OutputError(f"{path}: unknown audio format {fmt!r} (known: {', '.join(FORMATS)})")
    return SoundfileSink(
        fmt, path, sample_rate, tags, mp3_bitrate_kbps=mp3_bitrate_kbps, frames=frames
    )


def decode(
    path: Path, fmt: str, *, block_frames: int = READ_BLOCK_FRAMES
) -> tuple[int, Iterator[np.ndarray]]:
    """Sample rate and float32 mono blocks of a written file (M4B through ffmpeg)."""
    if fmt == "m4b":
        return _decode_ffmpeg(path, block_frames)
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


def _probe_rate(exe: str, path: Path) -> int:
    """The sample rate ffmpeg reports for the first audio stream (no ffprobe in the wheel)."""
    result = subprocess.run(
        [exe, "-nostdin", "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in result.stderr.splitlines():
        if "Audio:" in line and " Hz" in line:
            return int(line.split(" Hz")[0].split()[-1])
    raise OutputError(f"{path}: ffmpeg finds no audio stream")


def _decode_ffmpeg(path: Path, block_frames: int) -> tuple[int, Iterator[np.ndarray]]:
    exe = ffmpeg_path()
    if exe is None:
        raise OutputError(f"{path}: {M4B_HINT}")
    rate = _probe_rate(exe, path)
    command = [
        exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
        "-f", "f32le", "-ac", "1", "-ar", str(rate), "pipe:1",
    ]  # fmt: skip

    def blocks() -> Iterator[np.ndarray]:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        with process:
            while True:
                data = process.stdout.read(block_frames * 4)
                if not data:
                    break
                yield np.frombuffer(data[: len(data) - len(data) % 4], dtype="<f4").copy()
            failed = process.wait() != 0
        if failed:
            raise OutputError(f"{path}: ffmpeg cannot decode it")

    return rate, blocks()
