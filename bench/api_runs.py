"""Running a job's requests against the hosted emulator, once through ``narrate run`` and once
through the bare baseline script, and measuring both the same way.

Both clients send the same bodies (built with narrate's own request builder from the same
chunks) to the same path, each with its own API key: the emulator's limits are per key, so the
two never share a quota, even when they run at the same time.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    BENCH_DIR,
    MANUSCRIPTS_DIR,
    ProcessMeasure,
    narrate_command,
    narrate_env,
    run_measured,
    write_job,
)
from bench.emulated import MODEL_ID, VOICE_ID, ClockSummary, HostedEmulator
from bench.manuscripts import book_chunks, chunked_manuscript, transcripts
from pipeline.cache import ChunkCache, cache_key
from pipeline.config import load_job
from pipeline.tts import wire
from pipeline.tts.asyncflow import AsyncFlowEngine
from pipeline.tts.factory import needs_timings

NARRATE_KEY = "sk_bench_narrate_client"
BASELINE_KEY = "sk_bench_baseline_script"
KEY_ENV = "BENCH_ASYNCFLOW_KEY"


@dataclass(frozen=True, slots=True)
class ApiCase:
    """One job against one emulator setting. ``rpm``/``concurrency`` are the account's limits
    (0 = none) and, unless ``client_*`` say otherwise, the client's settings too."""

    name: str
    chunks: int
    max_chars: int
    rpm: int
    concurrency: int
    latency_ms: float
    per_char_ms: float
    together: bool = False  # run both clients at once (separate keys), to halve the wall time
    client_rpm: int | None = None
    client_concurrency: int | None = None

    @property
    def job_rpm(self) -> int:
        return self.client_rpm or self.rpm

    @property
    def job_concurrency(self) -> int:
        return self.client_concurrency or self.concurrency

    def emulator_settings(self) -> dict[str, Any]:
        return {
            "rpm": self.rpm,
            "concurrency": self.concurrency,
            "latency_ms": self.latency_ms,
            "latency_per_char_ms": self.per_char_ms,
            "fail_rate": 0.0,
        }


@dataclass(frozen=True, slots=True)
class PreparedCase:
    case: ApiCase
    folder: Path
    job: Path
    plan: Path  # the baseline's request file
    requests: int
    mean_chars: float


@dataclass(frozen=True, slots=True)
class ClientRun:
    client: str  # "narrate" or "baseline"
    process: ProcessMeasure
    clock: ClockSummary
    report: dict[str, Any]  # narrate's report.json, or the baseline's summary line

    @property
    def startup_s(self) -> float:
        """From starting the command to its first synthesis request reaching the server."""
        return self.clock.first_arrival - self.process.started_at if self.clock.requests else 0.0

    @property
    def tail_s(self) -> float:
        """From the last response to the command's exit."""
        end = self.process.started_at + self.process.wall_s
        return end - self.clock.last_end if self.clock.requests else 0.0


def lean_outputs() -> dict[str, Any]:
    """What the API benchmarks ask narrate to write: word timings (so the timestamps endpoint,
    as for any job with subtitles) and alignment.json, chapters assembled but no audio files
    mastered: mastering has its own benchmark, and here it would only dilute the figures."""
    return {
        "audio": {"formats": ["wav"], "loudness": "none"},
        "outputs": {"subtitles": [], "alignment": True, "chapter_files": False, "book_file": False},
    }


def prepare_case(case: ApiCase, base_url: str, work: Path) -> PreparedCase:
    folder = work / case.name
    manuscript = chunked_manuscript(
        MANUSCRIPTS_DIR / f"chunks-{case.chunks}-max{case.max_chars}.txt", case.chunks, max_chars=case.max_chars
    )
    settings = {
        "engine": {
            "kind": "asyncflow",
            "voice": VOICE_ID,
            "model": MODEL_ID,
            "base_url": base_url,
            "api_key_env": KEY_ENV,
            "language": "en",
            "sample_rate": 24000,
        },
        "limits": {
            # Without an account limit the job's own must not bind: a minute's worth of
            # requests at a latency of zero is far more than the emulator can serve.
            "requests_per_minute": case.job_rpm or 1_000_000,
            "max_concurrency": case.job_concurrency or 16,
            "retries": 6,
            "timeout_s": 120,
        },
        "text": {"max_chars": case.max_chars},
        **lean_outputs(),
    }
    job = write_job(folder, case.name, manuscript, settings)
    config = load_job(job).config
    path = wire.TIMESTAMPS_PATH if needs_timings(config) else wire.SPEECH_PATH
    # The transcripts exactly as the engine builds them; a chunk with nothing to say sends none.
    sent = transcripts(book_chunks(manuscript, case.max_chars))
    bodies = [wire.synthesis_body(config.engine, t) for t in sent if t.strip()]
    plan = folder / "requests.json"
    plan.write_text(json.dumps({"path": path, "bodies": bodies}), encoding="utf-8")
    mean_chars = statistics.fmean(len(b["transcript"]) for b in bodies)
    return PreparedCase(case, folder, job, plan, len(bodies), mean_chars)


def run_narrate(prepared: PreparedCase, emulator: HostedEmulator) -> ClientRun:
    for leftover in ("cache", "out"):  # every run pays for every chunk
        shutil.rmtree(prepared.folder / leftover, ignore_errors=True)
    process = run_measured(
        narrate_command("run", str(prepared.job), "--quiet"), env=narrate_env({KEY_ENV: NARRATE_KEY})
    ).check(f"narrate run {prepared.job.name}")
    report = json.loads((prepared.folder / "out" / "report.json").read_text(encoding="utf-8"))
    for done in ("cache", "out"):  # hours of audio: gigabytes nobody will look at
        shutil.rmtree(prepared.folder / done, ignore_errors=True)
    return ClientRun("narrate", process, emulator.clock.summary(NARRATE_KEY), report)


def run_baseline(prepared: PreparedCase, emulator: HostedEmulator) -> ClientRun:
    concurrency = prepared.case.job_concurrency or 16
    cmd = [
        sys.executable,
        str(BENCH_DIR / "baseline_asyncio.py"),
        str(prepared.plan),
        "--base-url",
        emulator.url,
        "--concurrency",
        str(concurrency),
        "--api-key-env",
        KEY_ENV,
    ]
    process = run_measured(cmd, env=narrate_env({KEY_ENV: BASELINE_KEY})).check("the baseline script")
    summary = json.loads(process.stdout.strip().splitlines()[-1])
    return ClientRun("baseline", process, emulator.clock.summary(BASELINE_KEY), summary)


def run_both(prepared: PreparedCase, emulator: HostedEmulator) -> tuple[ClientRun, ClientRun]:
    """narrate, then the baseline (or both at once when the case says so), each starting from
    a fresh emulator: counters, limit windows and timings forgotten."""
    emulator.reset(**prepared.case.emulator_settings())
    if not prepared.case.together:
        narrate = run_narrate(prepared, emulator)
        emulator.reset()
        return narrate, run_baseline(prepared, emulator)
    results: dict[str, ClientRun] = {}
    errors: list[BaseException] = []

    def target(name: str, fn: Callable[[PreparedCase, HostedEmulator], ClientRun]) -> Callable[[], None]:
        def go() -> None:
            try:
                results[name] = fn(prepared, emulator)
            except BaseException as exc:  # re-raised in the calling thread below
                errors.append(exc)

        return go

    threads = [
        threading.Thread(target=target("narrate", run_narrate)),
        threading.Thread(target=target("baseline", run_baseline)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results["narrate"], results["baseline"]


def theoretical_rpm(case: ApiCase, mean_latency_s: float) -> float:
    """``min(rpm, concurrency / mean latency)`` per minute; a missing limit does not bind."""
    bounds = []
    if case.rpm:
        bounds.append(float(case.rpm))
    if case.concurrency and mean_latency_s > 0:
        bounds.append(60.0 * case.concurrency / mean_latency_s)
    return min(bounds) if bounds else float("inf")


def achieved_rpm(run: ClientRun) -> float:
    return 60.0 * run.clock.succeeded / run.clock.span_s if run.clock.span_s > 0 else 0.0


def mean_in_flight(run: ClientRun) -> float:
    """Requests in flight on average over the request phase (Little's law: rate x latency)."""
    return run.clock.succeeded * run.clock.mean_latency_s / run.clock.span_s if run.clock.span_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class ReplyWork:
    """narrate's own synchronous work per reply, on its event loop: turning the reply into
    audio and word timings, and writing the cache entry."""

    decode_ms: float
    cache_ms: float


def client_work_per_reply(prepared: PreparedCase, emulator: HostedEmulator, samples: int = 20) -> ReplyWork:
    """Time narrate's handling of ``samples`` real replies, one at a time, outside any run."""
    config = load_job(prepared.job).config
    engine = AsyncFlowEngine(engine=config.engine, limits=config.limits, api_key=NARRATE_KEY)
    chunks = [c for c in book_chunks(Path(config.input.files[0]), prepared.case.max_chars) if not c.is_heading]
    path = wire.TIMESTAMPS_PATH if needs_timings(config) else wire.SPEECH_PATH
    headers = {"x-api-key": NARRATE_KEY, "version": wire.API_VERSION}
    decode = store = 0.0
    with tempfile.TemporaryDirectory(dir=prepared.folder) as tmp, httpx.Client(base_url=emulator.url) as http:
        cache = ChunkCache(Path(tmp))
        for chunk in chunks[:samples]:
            body = wire.synthesis_body(config.engine, " ".join(w for w in chunk.spoken_words if w))
            reply = http.post(path, json=body, headers=headers, timeout=120)
            reply.raise_for_status()
            started = time.perf_counter()
            # The engine's own reply handling (private, but exactly the code a run executes).
            audio = engine._read_speech(reply, chunk.spoken_words, context=chunk.id, need_timings=True)
            decoded = time.perf_counter()
            cache.put(cache_key(engine.identity(), chunk.spoken_words), audio)
            decode += decoded - started
            store += time.perf_counter() - decoded
    n = min(samples, len(chunks))
    return ReplyWork(1000 * decode / n, 1000 * store / n)
