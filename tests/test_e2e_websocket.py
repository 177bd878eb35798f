"""Whole jobs with ``engine.transport: websocket`` against the emulator on a loopback port:
the same outputs as over HTTP, limits kept, faults survived without paying twice, and a
killed run resumed without re-requesting a finished sentence group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import srt

from pipeline.cli import main
from pipeline.emulator.server import RunningEmulator, serve_in_thread
from pipeline.emulator.settings import EmulatorSettings
from pipeline.emulator.ws_route import WS_PATH
from tests.emulator_support import SARAH
from tests.jobs import write_job
from tests.resume_support import cache_keys, files_under, find_secret, short_book

pytestmark = pytest.mark.slow

KEY = "sk_ws_e2e_Pq7Lm2Xr9Tb4"


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with serve_in_thread(EmulatorSettings(api_keys=(KEY,), seed=5)) as running:
        yield running


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, emulator: RunningEmulator) -> RunningEmulator:
    monkeypatch.setenv("ASYNCAI_API_KEY", KEY)
    emulator.reset()
    emulator.configure(fail_rate=0.0, monthly_chars=None, concurrency=2, rpm=0, latency_ms=0.0)
    return emulator


def job(
    folder: Path, emulator: RunningEmulator, name: str, transport: str, paragraphs: int = 2, **over: Any
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manuscript = folder / "book.md"
    manuscript.write_text(short_book(chapters=3, paragraphs=paragraphs, per_paragraph=2), encoding="utf-8")
    settings: dict[str, Any] = {
        "input": {"files": [str(manuscript)]},
        "engine": {
            "kind": "asyncflow",
            "voice": SARAH,
            "base_url": emulator.url,
            "sample_rate": 16000,
            "transport": transport,
        },
        "limits": {"requests_per_minute": 600, "max_concurrency": 2, "retries": 8, "timeout_s": 3},
        "text": {"max_chars": 100},
    }
    for key, value in over.items():
        settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
    return write_job(folder, name=name, **settings)


def run(capsys: pytest.CaptureFixture[str], job_path: Path) -> tuple[int, str]:
    code = main(["run", str(job_path), "--quiet"])
    return code, capsys.readouterr().err


def words_of(out: Path) -> list[list[str]]:
    chapters = json.loads((out / "alignment.json").read_text())["chapters"]
    return [[w["text"] for w in c["words"]] for c in chapters]


def starts_of(out: Path) -> list[int]:
    chapters = json.loads((out / "alignment.json").read_text())["chapters"]
    return [w["start_ms"] for c in chapters for w in c["words"]]


def subtitle_words(out: Path) -> list[str]:
    cues = srt.parse(next(out.glob("*.srt")).read_text(encoding="utf-8"))
    return " ".join(c.content for c in cues).split()


def test_websocket_run_writes_what_the_http_run_writes(
    tmp_path: Path, env: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(capsys, job(tmp_path, env, "http", "http"))
    assert code == 0, err
    env.reset()
    code, err = run(capsys, job(tmp_path, env, "ws", "websocket"))
    assert code == 0, err
    stats = env.stats()
    http_out, ws_out = tmp_path / "out" / "http", tmp_path / "out" / "ws"
    assert sorted(p.name for p in ws_out.rglob("*")) == sorted(p.name for p in http_out.rglob("*"))
    assert words_of(ws_out) == words_of(http_out)
    assert subtitle_words(ws_out) == subtitle_words(http_out)
    ws_audio, rate = sf.read(str(next(ws_out.glob("*.wav"))), dtype="int16")
    http_audio, _ = sf.read(str(next(http_out.glob("*.wav"))), dtype="int16")
    assert rate == 16000 and abs(len(ws_audio) - len(http_audio)) <= rate // 100
    assert np.sqrt(np.mean(ws_audio.astype(np.float64) ** 2)) > 300  # speech, not silence

    # Three chapters, one socket each, never more than two at once: the limit was kept.
    assert stats["requests"][WS_PATH] == {"101": 3}
    assert "/text_to_speech/with_timestamps" not in stats["requests"]
    assert stats["peak_concurrent_requests"] <= 2 and stats["rate_limited_total"] == 0
    assert set(stats["synth_successes"].values()) == {1}
    report = json.loads((ws_out / "report.json").read_text())
    assert report["requests"]["transport"] == "websocket"
    assert report["requests"]["timings_source"] == "forced_alignment"
    assert report["requests"]["timings_by_source"] == {"forced_alignment": report["chunks_synthesized"]}
    # Timings from aligning the received audio are close to the API's own timestamps.
    ws_words, http_words = starts_of(ws_out), starts_of(http_out)
    errors = [abs(a - b) for a, b in zip(ws_words, http_words, strict=True)]
    assert float(np.median(errors)) <= 40, float(np.median(errors))
    assert report["requests"]["groups_confirmed"] == report["chunks_synthesized"] == len(stats["synth_successes"])
    assert report["requests"]["first_audio_s"] > 0

    # A rerun pays for nothing: every sentence group is in the cache.
    env.reset()
    code, err = run(capsys, job(tmp_path, env, "ws", "websocket"))
    assert code == 0, err
    assert env.stats()["requests"].get(WS_PATH) is None
    assert not find_secret(KEY, files_under(ws_out)) and KEY not in err


def test_faults_cost_only_the_group_being_heard(
    tmp_path: Path, env: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    env.configure(fail_rate=0.35)  # disconnects, error frames and stalls, seed 5
    code, err = run(capsys, job(tmp_path, env, "faulty", "websocket"))
    assert code == 0, err
    stats = env.stats()
    assert set(stats["faults_injected"]) == {"ws_disconnect", "ws_error", "ws_stall"}
    # Every group was heard complete exactly once: none confirmed before a fault was asked again.
    assert set(stats["synth_successes"].values()) == {1}
    report = json.loads((tmp_path / "out" / "faulty" / "report.json").read_text())
    assert report["chunks_failed"] == 0
    # Each fault cost one new socket (the chapter goes on from the group it struck), no more.
    assert report["requests"]["retries"] == stats["faults_injected_total"] + stats["rate_limited_total"]
    assert stats["requests"][WS_PATH]["101"] == 3 + stats["faults_injected_total"]


def test_a_killed_run_resumes_without_asking_for_finished_groups(
    tmp_path: Path, env: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    env.configure(latency_ms=300, concurrency=1)
    path = job(tmp_path, env, "killed", "websocket", paragraphs=3, limits={"max_concurrency": 1})
    cache = tmp_path / "cache"
    child_env = {**os.environ, "ASYNCAI_API_KEY": KEY}
    child_env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "pipeline.cli", "run", str(path), "--quiet"]
    child = subprocess.Popen(cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(cache_keys(cache)) < 4 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    _, child_err = child.communicate(timeout=30)
    time.sleep(0.5)  # let the server notice the dead socket
    before = cache_keys(cache)
    heard = sum(env.stats()["synth_successes"].values())

    code, err = run(capsys, path)
    assert code == 0, err
    after = env.stats()["synth_successes"]
    total = len(cache_keys(cache))
    assert 4 <= len(before) < total  # the kill came in the middle of the book
    # The rerun asked for exactly the groups that were not in the cache: the one being heard
    # at the kill (at most one: one socket) again, the finished ones never.
    assert sum(after.values()) - heard == total - len(before)
    assert len(after) == total and max(after.values()) <= 2
    assert KEY.encode() not in child_err and KEY not in err


def test_an_exhausted_quota_stops_the_run_and_keeps_what_was_heard(
    tmp_path: Path, env: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    env.configure(monthly_chars=300, concurrency=1)
    path = job(tmp_path, env, "quota", "websocket", limits={"max_concurrency": 1})
    code, err = run(capsys, path)
    assert code == 1
    assert "monthly character quota" in err and KEY not in err
    kept = cache_keys(tmp_path / "cache")
    assert kept and set(env.stats()["synth_successes"].values()) == {1}
    heard = sum(env.stats()["synth_successes"].values())
    env.configure(monthly_chars=None)
    code, err = run(capsys, path)
    assert code == 0, err
    # The second run asked only for what the first could not pay for.
    assert sum(env.stats()["synth_successes"].values()) - heard == len(cache_keys(tmp_path / "cache")) - len(kept)
    assert set(env.stats()["synth_successes"].values()) == {1}
