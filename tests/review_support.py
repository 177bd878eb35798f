"""A small finished job for the review page's tests, and the page's server and browser."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

# Our own three-chapter text: "Brannoch" is in chapters 1 and 3 only, so a lexicon entry for it
# touches those two chapters and must leave chapter 2's files alone.
MANUSCRIPT = """# The Ledger

The keeper of the Brannoch light wrote in his ledger every night. The sea was calm.

He counted the ships that passed and wrote down each of their names.

# The Storm

A storm came from the west. The keeper trimmed the wick and watched the water rise.

# The Morning

In the morning the Brannoch light still burned. The keeper closed his ledger and slept.
"""
RARE_WORD = "Brannoch"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def write_review_job(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "book.md").write_text(MANUSCRIPT, encoding="utf-8")
    (folder / "lexicon.yaml").write_text("# pronunciations for this book\n", encoding="utf-8")
    job = {
        "name": "ledger",
        "title": "The Small Ledger",
        "input": {"files": ["book.md"]},
        "engine": {"kind": "local", "voice": "en-us", "sample_rate": 16000},
        "text": {"max_chars": 120, "lexicon_file": "lexicon.yaml"},
        "audio": {"formats": ["wav"], "loudness": "audiobook"},
        "outputs": {"subtitles": ["srt", "vtt"], "alignment": True},
        "output_dir": "out",
        "cache_dir": "cache",
    }
    path = folder / "ledger.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


def run_job(job_path: Path) -> None:
    """The job through `narrate run`'s flow."""
    from pipeline.flows import narrate_flow

    state: Any = asyncio.run(narrate_flow(job_path=str(job_path), quiet=True, return_state=True))  # type: ignore[arg-type]
    assert state.is_completed(), state.message


def copy_job(finished: Path, folder: Path) -> Path:
    """A private copy of a finished job (job file, text, lexicon, outputs, cache)."""
    shutil.copytree(finished.parent, folder, symlinks=True)
    return folder / finished.name


def file_states(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every audio and subtitle file under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix in {".wav", ".srt", ".vtt"} and ".narrate" not in str(p):
            out[str(p.relative_to(folder))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


@contextmanager
def review_server(job_path: Path) -> Iterator[str]:
    """`narrate review JOB --port 0 --no-browser` in a subprocess; yields the URL it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "review", str(job_path), "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)
        if not found:
            proc.kill()
            raise AssertionError(f"no URL from narrate review: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        yield found.group(0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for_fix(get: Any, job_id: int, timeout: float = 120) -> dict[str, Any]:
    """Poll GET /api/jobs/{id} (``get`` returns the decoded JSON) until the fix ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data: dict[str, Any] = get(f"/api/jobs/{job_id}")
        if data["state"] in {"done", "failed"}:
            return data
        time.sleep(0.2)
    raise AssertionError(f"fix {job_id} did not finish in {timeout} s")


@pytest.fixture(scope="session")
def finished_job(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    """The small job, run once by `narrate run`'s flow; tests copy it before changing it."""
    job_path = write_review_job(tmp_path_factory.mktemp("review") / "job")
    run_job(job_path)
    return job_path


@pytest.fixture
def job_copy(finished_job: Path, tmp_path: Path) -> Path:
    return copy_job(finished_job, tmp_path / "job")
