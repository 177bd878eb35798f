"""Atomic file writes and the output-folder lock: no half-written final file, ever."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import OutputError

LOCK_NAME = ".narrate.lock"

# Temporary names of every atomic writer in narrate: ".<name>.<8-12 random chars>.tmp[.<ext>]"
# (here, in pipeline.audio and pipeline.align). Only hidden files match, never a user's file.
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-z_]{8,12}\.tmp(\.[A-Za-z0-9]{1,5})?$")


def new_temp_beside(path: Path) -> Path:
    """An empty new file next to ``path`` that keeps its suffix (soundfile and ffmpeg infer the
    format from it). Mode 0o666 so the umask decides, as for any file written in place
    (mkstemp would make every output private)."""
    for _ in range(100):
        candidate = path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise OutputError(f"{path}: cannot create a temporary file beside it")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; once the block ends normally, flush it to disk
    and rename it over ``path``. On any error ``path`` keeps its old content (or stays absent)
    and the temporary file is removed. Filesystem failures raise OutputError naming ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_temp_beside(path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        yield tmp
        try:
            _fsync(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        try:
            tmp.write_text(text, encoding="utf-8", newline="\n")
        except OSError as exc:
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def write_json_atomic(path: Path, data: object) -> None:
    # json.dump streams the encoder's pieces to the file: a book's alignment.json never exists
    # as one string in memory (at 100,000 words that string and its bytes were ~220 MB).
    with atomic_path(path) as tmp:
        try:
            with tmp.open("w", encoding="utf-8", newline="\n") as f:
                json.dump(data, f, ensure_ascii=False, indent=1)
                f.write("\n")
        except OSError as exc:
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def check_writable_folder(folder: Path, setting: str) -> None:
    """Fail early, before anything is spent, when ``folder`` cannot become a writable folder:
    it (or a parent) is a file, a parent is read-only, or the filesystem refuses. ``setting``
    names the job key ("output_dir") for the message. Missing folders are created to prove it
    (permissions alone do not tell, e.g. for root) and removed again: nothing is left behind."""
    existing = folder
    missing: list[Path] = []
    while not existing.exists() and existing != existing.parent:
        missing.append(existing)
        existing = existing.parent
    if not existing.is_dir():
        what = "exists and is not a folder" if existing == folder else f"is inside {existing}, which is a file"
        raise OutputError(f"{folder}: {setting} {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: {setting} is not writable ({existing} is read-only)")
    created: list[Path] = []
    try:
        for part in reversed(missing):
            os.mkdir(part)
            created.append(part)
    except FileExistsError:
        pass  # another run made it meanwhile: it can be made
    except OSError as exc:
        raise OutputError(f"{folder}: {setting} cannot be created: {exc.strerror or exc}") from None
    finally:
        for part in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(part)


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporary files that killed runs left in an output folder we hold the lock for.
    Sub-folders with a lock of their own (a preview) belong to other runs and are skipped."""
    removed = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not (Path(root) / d / LOCK_NAME).exists()]
        for name in files:
            if _TEMP_NAME.match(name):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, name))
                    removed += 1
    return removed


@contextmanager
def output_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on an output folder for the length of a run, so two runs of the
    same job cannot interleave their writes. The lock dies with the process (flock), so a
    killed run never leaves a stale lock behind; what such a run left half-written is swept."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{folder}: output_dir exists and is not a folder") from None
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create output folder: {exc.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{folder}: output folder is not writable")
    lock_path = folder / LOCK_NAME
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write to output folder: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(
                f"{folder}: another narrate run is writing to this folder; try again when it ends"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        remove_stale_temporaries(folder)
        yield
    finally:
        os.close(fd)
