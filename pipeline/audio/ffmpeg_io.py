"""Encoding and decoding through the ffmpeg binary of the optional ``imageio-ffmpeg`` wheel.

M4B (AAC with chapter markers) needs it. When it is installed, MP3 and Opus go through it too:
its LAME and libopus builds encode four to five times faster than the ones bundled with
libsndfile, and ffmpeg runs in its own process, beside the Python mastering pass. The mastered
PCM is piped in as it is produced, so nothing is held in memory.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pipeline.audio.resample import StreamingResampler
from pipeline.audio.tags import Tags, temp_beside
from pipeline.errors import OutputError

M4B_HINT = "m4b output needs ffmpeg: install it with pip install 'narrate[m4b]'"
# ffmpeg's AAC encoder at 64 kbps overshoots a limited signal's peaks by over 1 dB; at 96 kbps
# by a tenth or two, which the per-file headroom absorbs.
AAC_BITRATE_KBPS = 96
OPUS_BITRATE_KBPS = 64


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


def ffmetadata(tags: Tags, chapters: Sequence[tuple[str, int, int]]) -> str:
    """An ffmpeg metadata file (;FFMETADATA1) with the tags and one [CHAPTER] per chapter."""

    def escape(text: str) -> str:
        for char in "\\=;#\n":
            text = text.replace(char, "\\" + char)
        return text

    lines = [";FFMETADATA1"]
    for key, value in (*_metadata(tags), ("album_artist", tags.author), ("genre", "Audiobook")):
        if value:
            lines.append(f"{key}={escape(value)}")
    for title, start_ms, end_ms in chapters:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start_ms}", f"END={end_ms}", f"title={escape(title)}"]
    return "\n".join(lines) + "\n"


def _metadata(tags: Tags) -> list[tuple[str, str | None]]:
    return [
        ("title", tags.file_title),
        ("artist", tags.author),
        ("album", tags.file_album),
        ("track", tags.track_text),
    ]


class FfmpegSink:
    """One output file written by an ffmpeg process fed raw float32 PCM on its stdin."""

    def __init__(
        self,
        fmt: str,
        path: Path,
        sample_rate: int,
        output_rate: int,
        tags: Tags,
        *,
        mp3_bitrate_kbps: int = 192,
        chapters: Sequence[tuple[str, int, int]] = (),
    ) -> None:
        exe = ffmpeg_path()
        if exe is None:
            raise OutputError(f"{path}: {M4B_HINT}")
        self.path = path
        self._fmt = fmt
        self._temp = temp_beside(path)
        self._resampler = StreamingResampler(sample_rate, output_rate)
        self._meta: Path | None = None
        source = ["-f", "f32le", "-ar", str(output_rate), "-ac", "1", "-i", "pipe:0"]
        if fmt == "m4b":
            with tempfile.NamedTemporaryFile(
                "w", suffix=".txt", prefix=".narrate-meta-", dir=path.parent, delete=False, encoding="utf-8"
            ) as meta:
                meta.write(ffmetadata(tags, chapters))
            self._meta = Path(meta.name)
            source += ["-f", "ffmetadata", "-i", str(self._meta)]
            encode = ["-map", "0:a", "-map_metadata", "1", "-map_chapters", "1", "-c:a", "aac"]
            encode += ["-b:a", f"{AAC_BITRATE_KBPS}k", "-movflags", "+faststart", "-f", "ipod"]
        elif fmt == "mp3":  # -b:a without -abr is constant bit rate; ID3v2.3 is what players read
            encode = ["-c:a", "libmp3lame", "-b:a", f"{mp3_bitrate_kbps}k", "-id3v2_version", "3", "-f", "mp3"]
        elif fmt == "opus":
            encode = ["-c:a", "libopus", "-b:a", f"{OPUS_BITRATE_KBPS}k", "-f", "ogg"]
        else:
            raise OutputError(f"{path}: ffmpeg is not used for {fmt}")
        if fmt != "m4b":
            encode += [arg for key, value in _metadata(tags) if value for arg in ("-metadata", f"{key}={value}")]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - ffmpeg's stderr, outlives this call
        command = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *source, *encode, str(self._temp)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=self._log)

    def write(self, block: np.ndarray) -> None:
        self._send(self._resampler.process(block))

    def _send(self, block: np.ndarray) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        except BrokenPipeError:
            self._fail()

    def close(self) -> None:
        self._send(self._resampler.flush())
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
            raise OutputError(f"{self.path}: cannot write {self._fmt}: {exc.strerror}") from None

    def _fail(self) -> None:
        self._process.kill()
        self._process.wait()
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        self.abort()
        detail = lines[-1] if lines else f"exit status {self._process.returncode}"
        raise OutputError(f"{self.path}: ffmpeg could not write {self._fmt}: {detail}")

    def _cleanup(self) -> None:
        if self._meta is not None:
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


def _probe_rate(exe: str, path: Path) -> int:
    """The sample rate ffmpeg reports for the first audio stream (no ffprobe in the wheel)."""
    result = subprocess.run([exe, "-nostdin", "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    for line in result.stderr.splitlines():
        if "Audio:" in line and " Hz" in line:
            return int(line.split(" Hz")[0].split()[-1])
    raise OutputError(f"{path}: ffmpeg finds no audio stream")


def decode_ffmpeg(path: Path, block_frames: int) -> tuple[int, Iterator[np.ndarray]]:
    """Sample rate and float32 mono blocks of any file ffmpeg reads, streaming."""
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
