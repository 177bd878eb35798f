"""The benchmarks must not rot: each script runs end to end in its tiny ``--quick`` mode
(slow-marked: they start ``narrate run``, the emulator and worker processes), and the pieces
their figures rest on (manuscript sizes, the theoretical maximum, results appending, process
measurement, the bare script's 429 handling) are checked on their own.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import baseline_asyncio, run_all
from bench.api_runs import BASELINE_KEY, KEY_ENV, ApiCase, theoretical_rpm
from bench.bench_scaling import SizeRun, judge
from bench.common import (
    RESULTS_HEADER,
    ROOT,
    ProcessMeasure,
    append_results,
    machine_details,
    markdown_table,
    narrate_env,
    run_measured,
)
from bench.emulated import MODEL_ID, VOICE_ID, RequestClock, hosted_emulator
from bench.manuscripts import book_chunks, chunked_manuscript, synthetic_manuscript, transcripts
from pipeline.emulator.settings import EmulatorSettings

# --- manuscripts ----------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(words=st.integers(min_value=1, max_value=4000), seed=st.integers(min_value=0, max_value=2**16))
def test_a_synthetic_manuscript_has_the_words_asked_for(words: int, seed: int) -> None:
    text = synthetic_manuscript(words, seed=seed)
    body = [line for line in text.splitlines() if line and not re.fullmatch(r"Chapter \d+", line)]
    count = sum(len(line.split()) for line in body)
    # Whole sentences: at least the target, over it by less than one sentence (< 30 words).
    assert words <= count < words + 30
    assert text.startswith("Chapter 1\n\n")
    assert synthetic_manuscript(words, seed=seed) == text  # seeded: the same text every time


def test_a_smaller_manuscript_is_a_prefix_of_a_larger_one() -> None:
    small, large = synthetic_manuscript(2000), synthetic_manuscript(9000)
    cut = small.rstrip().rsplit(" ", 1)[0]  # the last paragraph may end sooner in the small one
    assert large.startswith(cut)
    assert large.count("Chapter ") == 3 and small.count("Chapter ") == 1


@pytest.mark.parametrize(("chunks", "max_chars"), [(2, 400), (17, 400), (40, 120)])
def test_a_manuscript_cut_for_n_chunks_makes_exactly_n(tmp_path: Path, chunks: int, max_chars: int) -> None:
    path = chunked_manuscript(tmp_path / "book.txt", chunks, max_chars=max_chars)
    sent = transcripts(book_chunks(path, max_chars))
    assert len(sent) == chunks and len(set(sent)) == chunks  # all different: the cache dedups nothing
    assert all(len(t) <= max_chars for t in sent)
    with pytest.raises(ValueError, match="at least 2 chunks"):
        chunked_manuscript(tmp_path / "tiny.txt", 1, max_chars=max_chars)


# --- the figures' arithmetic ----------------------------------------------------------------


def test_the_theoretical_maximum_is_the_tighter_limit() -> None:
    case = ApiCase("t", 10, 400, rpm=120, concurrency=5, latency_ms=0, per_char_ms=0)
    assert theoretical_rpm(case, 1.0) == 120  # 5 in flight at 1 s could do 300 a minute
    assert theoretical_rpm(case, 5.0) == pytest.approx(60)  # 5 in flight at 5 s: 60 a minute
    unlimited = ApiCase("t", 10, 400, rpm=0, concurrency=0, latency_ms=0, per_char_ms=0)
    assert theoretical_rpm(unlimited, 1.0) == float("inf")


def test_the_request_clock_keeps_each_clients_requests_apart() -> None:
    clock = RequestClock()
    clock.record("a", 10.0, 10.5, 200)
    clock.record("a", 10.2, 11.2, 200)
    clock.record("b", 10.1, 10.2, 429)
    clock.record("a", 12.0, 12.1, 429)
    a = clock.summary("a")
    assert (a.requests, a.succeeded, a.rejected_429) == (3, 2, 1)
    assert a.span_s == pytest.approx(2.1) and a.mean_latency_s == pytest.approx(0.75)
    assert clock.summary("b").succeeded == 0 and clock.summary().requests == 4


def test_the_bare_script_waits_what_the_server_asks() -> None:
    nested = httpx.Response(429, json={"detail": {"extra": {"retry_after_ms": 1500}}})
    flat = httpx.Response(429, json={"error_code": "RATE_LIMIT_EXCEEDED", "extra": {"retry_after_ms": 20}})
    header_only = httpx.Response(429, text="slow down", headers={"Retry-After": "3"})
    assert baseline_asyncio.retry_after_s(nested) == 1.5
    assert baseline_asyncio.retry_after_s(flat) == 0.02
    assert baseline_asyncio.retry_after_s(header_only) == 3.0


# --- results ----------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(bodies=st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=4))
def test_results_are_only_ever_appended(tmp_path_factory: pytest.TempPathFactory, bodies: list[str]) -> None:
    results = tmp_path_factory.mktemp("results") / "RESULTS.md"
    machine = {"cpu": "test cpu", "load average at start (1/5/15 min)": "0 / 0 / 0"}
    before = ""
    for i, body in enumerate(bodies):
        append_results(f"Case {i}", command=f"run {i}", body=body, machine=machine, results=results)
        now = results.read_text(encoding="utf-8")
        assert now.startswith(before) and len(now) > len(before)
        before = now
    assert before.startswith(RESULTS_HEADER) and before.count(RESULTS_HEADER) == 1
    assert before.count("\n## Case ") == len(bodies) and before.count("Reproduce: `run ") == len(bodies)


def test_machine_details_and_tables() -> None:
    details = machine_details()
    assert "cores available" in details["cpu"] and details["python"].count(".") == 2
    table = markdown_table(["a", "b"], [[1, "x|y"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |"]


# --- slow: real processes and servers -----------------------------------------------------------


@pytest.mark.slow
def test_a_subprocess_is_measured_from_outside() -> None:
    code = "import time; block = bytearray(150 * 1024 * 1024); time.sleep(0.3); sum(range(3_000_000))"
    measured = run_measured([sys.executable, "-c", code])
    assert measured.returncode == 0
    assert measured.peak_rss_mb >= 150 and measured.peak_tree_rss_mb >= 150
    assert measured.wall_s >= 0.3 and measured.cpu_s > 0
    failed = run_measured([sys.executable, "-c", "import sys; print('bad', file=sys.stderr); sys.exit(3)"])
    with pytest.raises(RuntimeError, match=r"^probe exited with status 3: bad$"):
        failed.check("probe")


@pytest.mark.slow
def test_the_bare_script_finishes_through_429s_and_the_clock_sees_them(tmp_path: Path) -> None:
    bodies = [
        {
            "model_id": MODEL_ID,
            "transcript": f"Request number {i}.",
            "voice": {"mode": "id", "id": VOICE_ID},
            "output_format": {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 16000},
        }
        for i in range(8)
    ]
    plan = tmp_path / "requests.json"
    plan.write_text(json.dumps({"path": "/text_to_speech", "bodies": bodies}), encoding="utf-8")
    # 3 requests per 1-second window, 4 in flight: the script must run into the limit.
    with hosted_emulator(EmulatorSettings(rpm=3, rpm_window_s=1.0, concurrency=4)) as emulator:
        cmd = [sys.executable, str(ROOT / "bench" / "baseline_asyncio.py"), str(plan), "--base-url", emulator.url]
        cmd += ["--concurrency", "4", "--api-key-env", KEY_ENV]
        done = run_measured(cmd, env=narrate_env({KEY_ENV: BASELINE_KEY})).check("baseline")
        summary = json.loads(done.stdout)
        clock = emulator.clock.summary(BASELINE_KEY)
        stats = emulator.stats()
    assert summary["ok"] == 8 and summary["failed"] == 0
    assert summary["status_429"] > 0
    assert clock.succeeded == 8 and clock.rejected_429 == summary["status_429"]
    assert stats["rate_limited"].get("RATE_LIMIT_EXCEEDED") == summary["status_429"]
    assert clock.span_s >= 2.0  # 8 requests at 3 a second need at least two more windows


def _quick(module: str, results: Path, *extra: str) -> str:
    cmd = [sys.executable, "-m", f"bench.{module}", "--quick", "--results", str(results), *extra]
    done = subprocess.run(cmd, cwd=ROOT, env=narrate_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = results.read_text(encoding="utf-8")
    assert text.startswith(RESULTS_HEADER)
    assert "Reproduce: `.venv/bin/python -m bench." in text and "--quick" in text
    return text


@pytest.mark.slow
def test_api_throughput_quick(tmp_path: Path) -> None:
    text = _quick("bench_api_throughput", tmp_path / "R.md")
    assert "## API throughput efficiency (quick)" in text
    # Every chunk answered, no 429 from either client (the limits are far above 12 requests).
    assert re.search(r"\| api-quick \| narrate \| 12 \| 0 \|", text)
    assert re.search(r"\| api-quick \| baseline \| 12 \| 0 \|", text)
    assert "429s provoked by narrate: 0 (target 0): met" in text


@pytest.mark.slow
def test_overhead_quick(tmp_path: Path) -> None:
    text = _quick("bench_overhead", tmp_path / "R.md")
    assert "## Orchestration overhead (quick)" in text
    assert re.search(r"\| overhead-quick \| narrate \| [\d.]+ \|", text)
    assert re.search(r"overhead-quick \(12 chunks, \d+ characters on average\): narrate costs", text)


@pytest.mark.slow
def test_local_engine_quick_through_run_all(tmp_path: Path) -> None:
    results = tmp_path / "R.md"
    cmd = [sys.executable, "-m", "bench.run_all", "--quick", "--only", "local_engine", "--results", str(results)]
    done = subprocess.run(cmd, cwd=ROOT, env=narrate_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = results.read_text(encoding="utf-8")
    row = re.search(r"\| LocalPoolEngine, \d+ processes \| ([\d,]+) \| (\d+) \| ([\d.]+) \|", text)
    assert row is not None
    assert 1000 <= int(row.group(1).replace(",", "")) < 1030 and int(row.group(2)) > 1
    assert float(row.group(3)) > 0  # some speech came out
    # run_all's own section comes last, naming the one step it ran and its outcome.
    assert re.search(r"## Whole run: bench.run_all \(quick\).*\| local_engine \| \d+ \| ok \|", text, re.DOTALL)
    assert text.index("## Local engine (quick)") < text.index("## Whole run")


@pytest.mark.slow
def test_scaling_quick(tmp_path: Path) -> None:
    text = _quick("bench_scaling", tmp_path / "R.md")
    row = re.search(r"\| 300 \| (\d+) \| ([\d.]+) \| ([\d.]+) \|", text)
    assert row is not None and int(row.group(1)) >= 2 and float(row.group(3)) > 0
    assert "- one size only: no growth to judge" in text


def _size(words: int, wall_s: float, peak_mb: float) -> SizeRun:
    process = ProcessMeasure(0, 0.0, wall_s, wall_s, peak_mb, peak_mb + 100, "", "")
    return SizeRun(words, {"audio_seconds": words * 0.35, "chunks_total": words // 40}, process)


def test_scaling_judges_linear_time_and_flat_memory() -> None:
    linear_flat = judge([_size(1000, 10, 300), _size(10_000, 19, 310), _size(100_000, 109, 320)])
    assert "- from 1,000 to 10,000 words: 1.00 s per 1,000 more words" in linear_flat
    assert any(line.startswith("- time: the last step costs 1.00x") and line.endswith(": met") for line in linear_flat)
    assert linear_flat[-1].endswith("(1.07x; flat if <= 1.5x): met")
    # Time per word doubling and memory growing with the book are both called out, with a reason.
    growing = judge([_size(1000, 10, 300), _size(10_000, 19, 400), _size(100_000, 199, 900)])
    assert any("costs 2.00x per word" in line and line.endswith("MISSED") for line in growing)
    assert any(line.startswith("- memory:") and line.endswith("MISSED") for line in growing)
    assert growing[-1].startswith("  - why")
    assert judge([_size(1000, 10, 300)]) == ["- one size only: no growth to judge"]


def test_run_all_plans_every_script_and_refuses_unknown_steps(tmp_path: Path) -> None:
    results = tmp_path / "R.md"
    steps = run_all.plan("quick", results)
    assert [s.name for s in steps] == ["api_throughput", "overhead", "local_engine", "mastering", "scaling"]
    for step in steps:
        assert step.command[1:3] == ["-m", f"bench.{step.command[2].split('.')[1]}"]
        assert "--quick" in step.command or "--hours" in step.command
        assert str(results) in step.command or "--no-append" in step.command
    full = {s.name: s.command for s in run_all.plan("full", results)}
    assert "--full" in full["api_throughput"] and "--quick" not in full["overhead"]
    assert full["mastering"][3:5] == ["--hours", "10"]
    with pytest.raises(SystemExit):
        run_all.main(["--only", "nonsense"])
