"""The emulator as a real server on a loopback port: broken connections, chunked streaming,
parallel clients, and the command line (``python -m pipeline.emulator``)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import httpx
import pytest

from pipeline.emulator.server import main, serve_in_thread
from pipeline.emulator.settings import EmulatorSettings, FaultKind
from pipeline.emulator.stats import transcript_hash
from pipeline.emulator.synth_routes import QUOTA_MARKER
from tests.emulator_support import HEADERS, KEY, SARAH, read_wav, synth_body

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", [FaultKind.DROP, FaultKind.TRUNCATE])
def test_broken_connections_fail_the_exchange(kind: FaultKind) -> None:
    settings = EmulatorSettings(fail_rate=1.0, faults=(kind,))
    with serve_in_thread(settings) as emulator, httpx.Client(headers=HEADERS) as client:
        with pytest.raises(httpx.RemoteProtocolError) as failure:
            client.post(f"{emulator.url}/text_to_speech", json=synth_body())
        # The server itself is fine: the next request on a new connection is answered.
        assert client.get(f"{emulator.url}/").status_code == 200
        stats = emulator.stats()
    outcome = "dropped" if kind is FaultKind.DROP else "truncated"
    assert stats["requests"]["/text_to_speech"] == {outcome: 1}
    if kind is FaultKind.TRUNCATE:
        assert "incomplete" in str(failure.value) or "complete message" in str(failure.value)


def test_streaming_arrives_in_pieces_and_marks_an_exhausted_quota() -> None:
    transcript = "A sentence long enough to be streamed in several pieces of audio."
    body = synth_body(transcript, output_format={"container": "raw"})
    with (
        serve_in_thread(EmulatorSettings(monthly_chars=100)) as emulator,
        httpx.Client(headers=HEADERS, base_url=emulator.url) as client,
    ):
        with client.stream("POST", "/text_to_speech/streaming", json=body) as response:
            assert response.headers["transfer-encoding"] == "chunked"
            pieces = [p for p in response.iter_raw() if p]
        with client.stream("POST", "/text_to_speech/streaming", json=body) as response:
            cut = b"".join(response.iter_raw())
    assert response.status_code == 200
    assert len(pieces) >= 2
    assert sum(map(len, pieces)) > 20_000
    assert cut.endswith(QUOTA_MARKER) and 0 < len(cut) - len(QUOTA_MARKER) < sum(map(len, pieces))


async def test_parallel_clients_respect_the_concurrency_limit_over_sockets() -> None:
    settings = EmulatorSettings(concurrency=2, latency_ms=200)
    with serve_in_thread(settings) as emulator:
        async with httpx.AsyncClient(headers=HEADERS, base_url=emulator.url) as client:
            responses = await asyncio.gather(
                *(client.post("/text_to_speech", json=synth_body(f"Line {i}.")) for i in range(5))
            )
        stats = emulator.stats()
    assert sorted(r.status_code for r in responses) == [200, 200, 429, 429, 429]
    for response in responses:
        if response.status_code == 200:
            assert read_wav(response.content)[1] == 24000
    assert stats["rate_limited"] == {"TOO_MANY_CONCURRENT_REQUESTS": 3}


def test_command_line_prints_its_url_and_serves() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.emulator", "--port", "0", "--api-key", "sk_cli_key_1234"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"emulator listening on (http://127\.0\.0\.1:(\d+))", line)
        assert match, line
        url = match.group(1)
        status = httpx.get(f"{url}/", timeout=10)
        speech = httpx.post(
            f"{url}/text_to_speech",
            json=synth_body("Hello."),
            headers={"x-api-key": "sk_cli_key_1234", "version": "v1"},
            timeout=30,
        )
        wrong = httpx.post(f"{url}/text_to_speech", json=synth_body(), headers=HEADERS, timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert status.json() == {"status": "ok", "version": "v1"}
    assert speech.status_code == 200 and speech.content[:4] == b"RIFF"
    assert wrong.status_code == 401


def test_command_line_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "0.0.0.0"]) == 2
    assert "loopback only" in capsys.readouterr().err
    assert main(["--fail-rate", "1.5"]) == 2
    assert capsys.readouterr().err.strip().startswith("narrate emulator: --fail-rate:")
    assert main(["--faults", "500,boom"]) == 2
    assert "unknown fault kind 'boom'" in capsys.readouterr().err


def test_a_taken_port_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread() as emulator:
        assert main(["--port", str(emulator.port)]) == 1
    assert f"cannot listen on 127.0.0.1:{emulator.port}" in capsys.readouterr().err


async def test_the_narrate_client_survives_every_retryable_fault() -> None:
    """The contract with pipeline.tts.asyncflow: every injected fault is one it retries, and
    no chunk is billed twice. (End-to-end jobs are tested with the flows.)"""
    from pipeline.config import EngineConfig, LimitsConfig
    from pipeline.tts.asyncflow import AsyncFlowEngine

    settings = EmulatorSettings(fail_rate=0.3, seed=11, fault_retry_after_ms=20)
    chunks = [f"Chunk number {i} says a few words.".split() for i in range(24)]
    with serve_in_thread(settings) as emulator:
        engine = AsyncFlowEngine(
            engine=EngineConfig(kind="asyncflow", voice=SARAH, base_url=emulator.url),
            limits=LimitsConfig(requests_per_minute=6000, retries=12, timeout_s=20),
            api_key=KEY,
        )
        try:
            results = await asyncio.gather(
                *(engine.synthesize(words, chunk_id=f"c{i}", need_timings=i % 2 == 0) for i, words in enumerate(chunks))
            )
        finally:
            await engine.aclose()
        stats = emulator.stats()
    assert [len(r.timings) for r in results] == [len(words) for words in chunks]
    assert all(len(r.samples) > 0.5 * r.sample_rate for r in results)
    successes = stats["synth_successes"]
    assert [successes.get(transcript_hash(" ".join(w))) for w in chunks] == [1] * len(chunks)
    assert len(stats["faults_injected"]) >= 4  # several different kinds were survived
