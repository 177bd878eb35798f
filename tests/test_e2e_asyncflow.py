"""Whole jobs through the `asyncflow` engine, over real HTTP, against the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from pipeline.cli import main
from pipeline.emulator.server import RunningEmulator, serve_in_thread
from pipeline.emulator.settings import ALL_FAULTS, EmulatorSettings
from tests.jobs import write_job

pytestmark = pytest.mark.slow

KEY = "sk_e2e_Hk29sLq8ZmW3"
VOICE = "e0f39dc4-f691-4e78-bba5-5c636692cc04"
STORY = """# The Ferry

## One

The ferry left at seven. Nobody on board had paid the full fare, and the captain knew it.
He said nothing, because the sea was calm and the coffee was hot.

## Two

By nine the fog came in. The captain slowed to 4 knots and rang the bell every minute,
and the passengers, who had been loud, went quiet and listened to it.
"""


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with serve_in_thread(EmulatorSettings(api_keys=(KEY,), seed=3)) as running:
        yield running


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, emulator: RunningEmulator, prefect_harness: None) -> RunningEmulator:
    monkeypatch.setenv("ASYNCAI_API_KEY", KEY)
    emulator.reset()
    emulator.configure(fail_rate=0.0, monthly_chars=None, concurrency=0, rpm=0)
    return emulator


def job(folder: Path, emulator: RunningEmulator, name: str, **over: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manuscript = folder / "ferry.md"
    manuscript.write_text(STORY, encoding="utf-8")
    settings: dict[str, Any] = {
        "input": {"files": [str(manuscript)]},
        "engine": {"kind": "asyncflow", "voice": VOICE, "base_url": emulator.url, "sample_rate": 24000},
        "limits": {"requests_per_minute": 600, "max_concurrency": 4, "retries": 8, "timeout_s": 20},
        "text": {"max_chars": 120},
    }
    for key, value in over.items():
        settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
    return write_job(folder, name=name, **settings)


def run(capsys: pytest.CaptureFixture[str], job_path: Path) -> tuple[int, str]:
    code = main(["run", str(job_path), "--quiet"])
    return code, capsys.readouterr().err


def outputs(out: Path) -> dict[str, Any]:
    audio, _ = sf.read(str(next(out.glob("*.wav"))), dtype="int16")
    return {
        "audio": audio,
        "srt": next(out.glob("*.srt")).read_text(),
        "vtt": next(out.glob("*.vtt")).read_text(),
        "alignment": json.loads((out / "alignment.json").read_text())["chapters"],
    }


def test_faults_on_every_retryable_kind_change_nothing(
    tmp_path: Path, env: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = job(tmp_path / "clean", env, "clean")
    assert run(capsys, clean)[0] == 0
    env.reset()
    env.configure(fail_rate=0.2, faults=ALL_FAULTS)  # every kind the emulator injects is retryable
    faulty = job(tmp_path / "faulty", env, "faulty")
    assert run(capsys, faulty)[0] == 0
    stats = env.stats()
    assert sum(stats["faults_injected"].values()) > 0
    report = json.loads((tmp_path / "faulty" / "out" / "faulty" / "report.json").read_text())
    assert report["chunks_failed"] == 0 and report["chunks_synthesized"] == report["chunks_total"]
    a, b = outputs(tmp_path / "clean" / "out" / "clean"), outputs(tmp_path / "faulty" / "out" / "faulty")
    assert np.array_equal(a["audio"], b["audio"])
    assert a["srt"] == b["srt"] and a["vtt"] == b["vtt"]
    for ca, cb in zip(a["alignment"], b["alignment"], strict=True):
        assert ca["words"] == cb["words"]


def test_a_job_within_the_servers_limits_sees_no_429(
    tmp_path: Path, env: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    env.configure(concurrency=2, rpm=600)
    path = job(tmp_path, env, "limited", limits={"max_concurrency": 2, "requests_per_minute": 300})
    assert run(capsys, path)[0] == 0
    stats = env.stats()
    assert not stats["sent_429"] or sum(stats["sent_429"].values()) == 0
    assert stats["peak_concurrent_requests"] <= 2


@pytest.mark.parametrize(
    ("setting", "needle"),
    [({"api_key": "sk_wrong_key_123456"}, "API key"), ({"voice": "no-such-voice-id"}, "voice")],
)
def test_wrong_key_or_voice_is_one_line_and_spends_nothing(
    tmp_path: Path,
    env: RunningEmulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    setting: dict[str, str],
    needle: str,
) -> None:
    if "api_key" in setting:
        monkeypatch.setenv("ASYNCAI_API_KEY", setting["api_key"])
        path = job(tmp_path, env, "bad")
    else:
        path = job(tmp_path, env, "bad", engine={"voice": setting["voice"]})
    code, err = run(capsys, path)
    lines = [line for line in err.splitlines() if line.startswith("narrate: error:")]
    assert code == 1 and len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err and "sk_wrong" not in err
    assert env.stats()["characters_synthesized"] == 0


def test_quota_stop_then_rerun_pays_only_for_the_rest(
    tmp_path: Path, env: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    env.configure(monthly_chars=200)
    path = job(tmp_path, env, "quota", limits={"max_concurrency": 1})
    code, err = run(capsys, path)
    assert code == 1 and "quota" in err.lower()
    first = dict(env.stats()["synth_successes"])
    assert first, "some chunks finished before the quota ran out"
    env.configure(monthly_chars=None)
    assert run(capsys, path)[0] == 0
    after = env.stats()["synth_successes"]
    assert all(n == 1 for n in after.values()), "no chunk was paid for twice"
    assert set(first) < set(after)
