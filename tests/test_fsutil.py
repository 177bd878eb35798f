"""Atomic writes, the output-folder lock, the sweep of what killed runs left, and the early
check that an output folder can be written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.errors import OutputError
from pipeline.fsutil import (
    atomic_path,
    check_writable_folder,
    output_lock,
    remove_stale_temporaries,
    write_json_atomic,
    write_text_atomic,
)


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "cues.srt"
    write_text_atomic(target, "first\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a fi")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "first\n"
    write_json_atomic(target, {"ok": "é"})
    assert target.read_text() == '{\n "ok": "é"\n}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["cues.srt"]


def test_temporary_keeps_the_suffix_and_the_result_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "book.flac") as tmp:
            assert tmp.suffix == ".flac" and tmp.name.startswith(".book.") and tmp.parent == tmp_path
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "book.flac").stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600


def test_unwritable_destination_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"file/out\.srt"):
        write_text_atomic(tmp_path / "file" / "out.srt", "text")


def test_sweep_removes_only_what_killed_writers_left(tmp_path: Path) -> None:
    leftovers = [
        tmp_path / ".book.3f9a2c1b0d4e.tmp.wav",  # fsutil.atomic_path
        tmp_path / "chapters" / ".01-one.wav.a1b2c3d4.tmp",  # pipeline.audio writers
        tmp_path / ".alignment.json.k2_x9qzr.tmp",  # mkstemp-style
    ]
    keep = [
        tmp_path / "book.wav",
        tmp_path / "notes.tmp",  # a user's file: not hidden
        tmp_path / ".hidden-config",
        tmp_path / "preview" / ".book.3f9a2c1b0d4e.tmp.wav",  # another run's folder (own lock)
    ]
    (tmp_path / "preview" / ".narrate.lock").parent.mkdir()
    (tmp_path / "preview" / ".narrate.lock").write_text("")
    for p in leftovers + keep:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == 3
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in keep)


def test_the_lock_sweeps_on_entry(tmp_path: Path) -> None:
    stale = tmp_path / ".book.0123456789ab.tmp.wav"
    tmp_path.joinpath("book.wav").write_bytes(b"RIFF")
    stale.write_bytes(b"RIF")
    with output_lock(tmp_path):
        assert not stale.exists()
    assert (tmp_path / "book.wav").exists()


def test_one_run_per_output_folder_across_processes(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from pipeline.fsutil import output_lock\n"
            "with output_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(30)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match="another narrate run"), output_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 5
    while True:  # a killed holder's lock goes with it: no stale lock to clean up by hand
        try:
            with output_lock(tmp_path):
                break
        except OutputError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_writable_check_creates_nothing(tmp_path: Path) -> None:
    check_writable_folder(tmp_path / "a" / "b" / "c", "output_dir")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="output_dir exists and is not a folder"):
        check_writable_folder(tmp_path / "f", "output_dir")
    with pytest.raises(OutputError, match=r"cache_dir is inside .*f, which is a file"):
        check_writable_folder(tmp_path / "f" / "g", "cache_dir")
    with pytest.raises(OutputError, match=r"output_dir (cannot be created|is not writable)"):
        check_writable_folder(Path("/proc/narrate-no/out"), "output_dir")
