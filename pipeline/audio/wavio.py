"""Atomic, block-wise writing of float32 WAV files.

A final output file either does not exist yet, keeps its previous content, or holds the whole
new audio: samples go to a temporary file in the destination folder (same filesystem, so the
rename is atomic), which is flushed to disk and then renamed over the destination. Nothing is
buffered beyond the block being written, so memory does not grow with the length of the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.errors import OutputError
from pipeline.fsutil import new_temp_beside

# A RIFF/WAV header stores sizes in 32 bits; past about 4 GiB of samples the file must be RF64
# (which soundfile/libsndfile reads back transparently). Leave room for the header chunks.
_WAV_MAX_DATA_BYTES = 0xFFFFFFFF - 64 * 1024
_FLOAT_BYTES = 4
# Silence is written from one shared block of zeros, this many frames at a time.
_SILENCE_BLOCK_FRAMES = 1 << 16


def container_for(max_frames: int, channels: int = 1) -> str:
    """The libsndfile container for a float32 file of at most ``max_frames`` frames."""
    return "WAV" if max_frames * channels * _FLOAT_BYTES <= _WAV_MAX_DATA_BYTES else "RF64"


class BlockWriter:
    """Appends float32 blocks to an open sound file and counts the frames written."""

    def __init__(self, sound_file: sf.SoundFile, channels: int, out_path: Path) -> None:
        self._file = sound_file
        self._out_path = out_path
        shape = (_SILENCE_BLOCK_FRAMES, channels) if channels > 1 else (_SILENCE_BLOCK_FRAMES,)
        self._zeros = np.zeros(shape, dtype=np.float32)
        self.frames_written = 0

    def write(self, block: np.ndarray) -> None:
        if len(block) == 0:
            return
        try:
            self._file.write(np.asarray(block, dtype=np.float32))
        except RuntimeError as exc:  # libsndfile's write errors, e.g. a full disk
            raise OutputError(f"{self._out_path}: write failed ({exc})") from exc
        self.frames_written += len(block)

    def write_silence(self, frames: int) -> None:
        """Digital zero; mastering may lay room tone over it later."""
        remaining = frames
        while remaining > 0:
            step = min(remaining, _SILENCE_BLOCK_FRAMES)
            self.write(self._zeros[:step])
            remaining -= step


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_wav_writer(
    out_path: Path, *, sample_rate: int, channels: int = 1, max_frames: int = 0
) -> Iterator[BlockWriter]:
    """Yield a writer for a float32 WAV that appears at ``out_path`` only if the block exits
    normally. ``max_frames`` is an upper bound on the length, used to pick WAV or RF64.

    Any exception inside the block (including one raised by the caller's own code) removes the
    temporary file and leaves ``out_path`` as it was; the exception propagates unchanged.
    Failures of the filesystem itself become ``OutputError`` naming the file.
    """
    out_path = Path(out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = new_temp_beside(out_path)
    except OSError as exc:
        raise OutputError(f"{out_path}: cannot write here ({exc.strerror or exc})") from exc
    sound_file: sf.SoundFile | None = None
    try:
        try:
            sound_file = sf.SoundFile(
                tmp_path,
                "w",
                samplerate=sample_rate,
                channels=channels,
                subtype="FLOAT",
                format=container_for(max_frames, channels),
            )
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise OutputError(f"{out_path}: cannot open for writing ({exc})") from exc
        writer = BlockWriter(sound_file, channels, out_path)
        yield writer
        try:
            sound_file.close()
            _fsync_path(tmp_path)
            os.replace(tmp_path, out_path)
        except (OSError, RuntimeError) as exc:
            raise OutputError(f"{out_path}: cannot finish writing ({exc})") from exc
        with contextlib.suppress(OSError):
            _fsync_path(out_path.parent, directory=True)  # make the rename itself durable
    except BaseException:
        if sound_file is not None and not sound_file.closed:
            with contextlib.suppress(Exception):
                sound_file.close()
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
