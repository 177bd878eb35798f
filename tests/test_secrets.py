"""The API key never appears in any output, cache entry, log line, or in what Prefect stores.

Real runs through the real flow against the emulator (with injected faults, so retries and
error messages are logged), every logger at DEBUG, the process's own stdout/stderr captured at
the file-descriptor level, then a search of all of it, and of Prefect's flow runs (parameters,
state messages, logs) and task runs, for the key and for every 8-character piece of it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.emulator.server import RunningEmulator, serve_in_thread
from pipeline.emulator.settings import EmulatorSettings, FaultKind
from tests.emulator_support import SARAH
from tests.jobs import write_job
from tests.resume_support import files_under, find_secret, secret_fragments, short_book

pytestmark = pytest.mark.slow

KEY = "sk_live_Secr3tKeyW9pQ4vN7xL2mZ8"
WRONG_KEY = "sk_live_Wr0ngKeyH5tR1yU6iO3pA0"


def test_fragments_cover_truncated_echoes() -> None:
    pieces = secret_fragments(KEY)
    assert KEY in pieces and "Secr3tKe" in pieces and "mZ8" not in pieces
    assert find_secret(KEY, {"log": b"key sk_live_Secr3tKe... was rejected"}) == ["log: Secr3tKe"]
    assert find_secret(KEY, {"log": b"key sk_live_... was rejected"}) == []


@pytest.fixture
def debug_logs() -> Iterator[io.StringIO]:
    """Every record of every logger, at DEBUG, as text."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    names = ["", "prefect", "httpx", "httpcore", "pipeline", "uvicorn", "tenacity"]
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).addHandler(handler)
        logging.getLogger(n).setLevel(logging.DEBUG)
    try:
        yield sink
    finally:
        for n, level in saved.items():
            logging.getLogger(n).removeHandler(handler)
            logging.getLogger(n).setLevel(level)


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    faults = (FaultKind.SERVER_500, FaultKind.RATE_429, FaultKind.TRUNCATE, FaultKind.MALFORMED_JSON)
    settings = EmulatorSettings(api_keys=(KEY,), rpm=0, concurrency=0, fail_rate=0.3, faults=faults, seed=3)
    with serve_in_thread(settings) as running:
        yield running


async def prefect_records() -> dict[str, bytes]:
    """What Prefect stores about every flow run and task run of this test session."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    blobs: dict[str, bytes] = {}
    async with get_client() as client:
        flow_runs = await client.read_flow_runs()
        for run in flow_runs:
            blobs[f"flow run {run.id}"] = run.model_dump_json().encode()
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
            blobs[f"flow run {run.id} logs"] = "\n".join(log.message for log in logs).encode()
        for task_run in await client.read_task_runs():
            blobs[f"task run {task_run.id}"] = task_run.model_dump_json().encode()
    return blobs


def test_the_key_is_nowhere(
    tmp_path: Path,
    prefect_harness: None,
    emulator: RunningEmulator,
    debug_logs: io.StringIO,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manuscript = tmp_path / "book.md"
    manuscript.write_text(short_book(chapters=2, paragraphs=2), encoding="utf-8")
    engine: dict[str, Any] = {"kind": "asyncflow", "voice": SARAH, "base_url": emulator.url, "sample_rate": 16000}
    limits = {"requests_per_minute": 6000, "max_concurrency": 3, "retries": 8, "max_cost_usd": 0.0001}
    job = write_job(tmp_path, name="secret", input={"files": [str(manuscript)]}, engine=engine, limits=limits)

    from prefect.settings import PREFECT_API_URL

    # A configured server (not only the harness's settings): `narrate run` records its runs
    # there, and those records are searched for the key too.
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    monkeypatch.setenv("ASYNCAI_API_KEY", KEY)
    assert main(["run", str(job), "--yes"]) == 0  # --yes: past the spending limit, unattended
    stats = emulator.stats()
    assert stats["faults_injected_total"] > 0  # errors really were answered, logged and retried
    monkeypatch.setenv("ASYNCAI_API_KEY", WRONG_KEY)
    assert main(["run", str(job), "--yes", "--fresh"]) == 1  # rejected key: its message is checked too
    captured = capfd.readouterr()
    assert "INVALID_API_KEY" in captured.err or "rejected" in captured.err

    report = json.loads((tmp_path / "out" / "secret" / "report.json").read_text())
    assert report["chunks_failed"] == 0 and report["requests"]["retries"] > 0
    blobs = files_under(tmp_path / "out", tmp_path / "cache")
    assert any(name.endswith(".chunk") for name in blobs) and any(name.endswith(".wav") for name in blobs)
    blobs |= {"stdout": captured.out.encode(), "stderr": captured.err.encode(), "logs": debug_logs.getvalue().encode()}
    assert "HTTP Request: POST" in debug_logs.getvalue()  # the debug logs really were captured
    stored = asyncio.run(prefect_records())
    ours = [b for name, b in stored.items() if name.startswith("flow run") and str(job).encode() in b]
    assert len(ours) >= 2  # both runs are recorded, with the job path as their parameter
    blobs |= stored
    for secret in (KEY, WRONG_KEY):
        assert not find_secret(secret, blobs)
