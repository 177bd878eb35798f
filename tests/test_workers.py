"""One API account's limits shared across processes through Prefect global concurrency limits,
and `narrate deploy` + two `prefect worker` processes running two jobs on one account."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import JobConfig
from pipeline.emulator.limits import account_label
from pipeline.emulator.server import serve_in_thread
from pipeline.emulator.settings import EmulatorSettings
from pipeline.orchestrate.shared_limits import (
    RATE_QUANTUM,
    WINDOW_MARGIN_S,
    AccountLimits,
    account_id,
    shares_limits,
)
from tests.conftest import REPO
from tests.jobs import write_job
from tests.prefect_server import BIN, Api, prefect_env, prefect_server, started, state_of, wait_for

SARAH = "e0f39dc4-f691-4e78-bba5-5c636692cc04"


# --- the limits' arithmetic ---------------------------------------------------------------


@given(
    rpm=st.integers(min_value=1, max_value=100_000),
    concurrency=st.integers(min_value=1, max_value=1000),
    window=st.floats(min_value=0.5, max_value=3600),
)
def test_no_window_can_hold_more_than_the_account_allows(rpm: int, concurrency: int, window: float) -> None:
    limits = AccountLimits("acct", rpm, concurrency, window_s=window)
    # Even a window stretched by the network margin holds no more than the account's limit.
    assert limits.most_requests_in(window + WINDOW_MARGIN_S) <= rpm
    assert limits.requests_per_second >= 0
    limit, decay = limits.rate_limit_settings()
    assert limit >= RATE_QUANTUM  # a request's slots fit in the limit
    assert decay == pytest.approx(limits.requests_per_second * RATE_QUANTUM)


@given(rpm=st.integers(min_value=30, max_value=100_000))
def test_the_shared_limit_gives_away_little_of_the_account(rpm: int) -> None:
    limits = AccountLimits("acct", rpm, 5)
    # A minute of steady traffic gets within the margin (1 s of 61) plus the burst of the limit.
    assert limits.most_requests_in(60) >= rpm * 0.95 - 2


def test_account_id_names_the_account_without_the_key() -> None:
    key = "sk_live_0123456789abcdef0123456789abcdef"
    ident = account_id(key)
    assert ident == account_id(key) and ident != account_id(key + "x")
    assert len(ident) == 8 and ident not in key
    limits = AccountLimits(ident, 120, 5)
    assert limits.rate_name == f"narrate-asyncflow-{ident}-rpm"
    assert limits.concurrency_name == f"narrate-asyncflow-{ident}-concurrency"


@pytest.mark.parametrize("bad", [(0, 5, 60.0), (10, 0, 60.0), (10, 5, 0.0)])
def test_limits_must_be_positive(bad: tuple[int, int, float]) -> None:
    with pytest.raises(ValueError):
        AccountLimits("a", bad[0], bad[1], window_s=bad[2])


def _config(kind: str, shared: str) -> JobConfig:
    return JobConfig.model_validate(
        {"name": "j", "input": {"files": ["a.md"]}, "engine": {"kind": kind}, "limits": {"shared": shared}}
    )


def test_who_shares_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert not shares_limits(_config("asyncflow", "auto"))  # no server: in-process only
    assert shares_limits(_config("asyncflow", "on"))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert shares_limits(_config("asyncflow", "auto"))
    assert not shares_limits(_config("asyncflow", "off"))
    assert not shares_limits(_config("local", "on"))  # no account to share


# --- real processes against one server ------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("prefect-home")
    with prefect_server(home) as url:
        yield url, home


def _result(log: Path) -> dict[str, Any]:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    assert lines, log.read_text(errors="replace")[-3000:]
    return dict(json.loads(lines[-1]))


@pytest.mark.slow
def test_shared_rate_limit_holds_across_two_processes(server: tuple[str, Path], tmp_path: Path) -> None:
    """Two processes, each willing to send 4 at once, one account allowing 6 per 3-second
    window (a short window, so the limit binds within seconds): no 429, no window over 6."""
    url, home = server
    key, per_process, rpm, window = "sk_gate_test_key_A", 8, 6, 3.0
    settings = EmulatorSettings(api_keys=(key,), rpm=rpm, rpm_window_s=window, concurrency=2)
    with serve_in_thread(settings) as emulator:
        argv = [str(BIN / "python"), "-m", "tests.shared_gate_client", emulator.url, key, str(per_process)]
        argv += [str(rpm), "2", str(window)]
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        with (
            started(argv, prefect_env(home, url), logs[0], cwd=REPO) as a,
            started(argv, prefect_env(home, url), logs[1], cwd=REPO) as b,
        ):
            assert a.wait(timeout=150) == 0 and b.wait(timeout=150) == 0, [p.read_text()[-2000:] for p in logs]
        stats = emulator.stats()
    first, second = (_result(p) for p in logs)
    assert first["failures"] == [] and second["failures"] == []
    assert len(first["finished"]) == len(second["finished"]) == per_process
    account = stats["accounts"][account_label(key)]
    assert stats["rate_limited_total"] == 0, stats["rate_limited"]
    assert account["peak_requests_per_window"] <= rpm
    assert account["peak_concurrent_requests"] <= 2
    # Both progressed side by side: each finished requests while the other was still working.
    assert first["finished"][0] < second["finished"][-1] and second["finished"][0] < first["finished"][-1]
    # And the limit did the pacing: 16 requests at 6 per (3 + 1) s need well over 5 s.
    every = sorted(first["finished"] + second["finished"])
    assert every[-1] - every[0] > 5


def _manuscript(folder: Path, title: str, sentences: int) -> Path:
    lines = [f"# {title}", "", "## Part One", ""]
    lines += [f"Line {i} of {title.lower()} is spoken here now." for i in range(sentences)]
    path = folder / f"{title.lower().replace(' ', '-')}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_two_workers_share_one_account(server: tuple[str, Path], tmp_path: Path) -> None:
    """`narrate deploy` two jobs on one key; two workers (one run each at a time) run them at
    once; the emulator never sees more than the account's 2 in flight, although each job on
    its own keeps 2 in flight."""
    url, home = server
    key, concurrency, rpm = "sk_worker_test_key_B", 2, 300
    settings = EmulatorSettings(api_keys=(key,), rpm=rpm, concurrency=concurrency, latency_ms=300)
    with serve_in_thread(settings) as emulator:
        jobs = []
        for name in ("alpha", "beta"):
            book = _manuscript(tmp_path, f"Book {name}", sentences=20)
            jobs.append(
                write_job(
                    tmp_path,
                    name=name,
                    title=None,
                    input={"files": [str(book)]},
                    engine={"kind": "asyncflow", "base_url": emulator.url, "voice": SARAH, "sample_rate": 16000},
                    limits={"requests_per_minute": rpm, "max_concurrency": concurrency, "retries": 0},
                    text={"max_chars": 60},  # one sentence a request: many requests
                    outputs={"subtitles": [], "alignment": False},
                )
            )
        env = prefect_env(home, url, ASYNCAI_API_KEY=key)
        deploy = subprocess.run(
            [str(BIN / "narrate"), "deploy", *map(str, jobs), "--pool", "narrate-test"],
            env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert deploy.returncode == 0, deploy.stderr[-3000:]
        assert "deployed narrate/alpha" in deploy.stdout and "deployed narrate/beta" in deploy.stdout
        api = Api(url)
        worker = [str(BIN / "prefect"), "worker", "start", "--pool", "narrate-test", "--type", "process"]
        worker += ["--limit", "1"]  # one run at a time per worker: two runs at once means two workers
        with (
            started([*worker, "--name", "w1"], env, tmp_path / "w1.log"),
            started([*worker, "--name", "w2"], env, tmp_path / "w2.log"),
        ):
            runs = [api.run_deployment("narrate/alpha"), api.run_deployment("narrate/beta")]
            done = [wait_for(partial(api.finished, r), timeout=240, what=f"flow run {r}") for r in runs]
        stats = emulator.stats()
    logs = "".join((tmp_path / f"w{i}.log").read_text(errors="replace")[-2000:] for i in (1, 2))
    assert [state_of(r) for r in done] == ["COMPLETED", "COMPLETED"], ([r["state"]["message"] for r in done], logs)
    reports = [json.loads((tmp_path / "out" / n / "report.json").read_text()) for n in ("alpha", "beta")]
    for report in reports:
        assert report["chunks_failed"] == 0 and report["chunks_total"] > 15
        # Both books open with the same heading, which the shared chunk cache speaks only once.
        assert report["chunks_synthesized"] + report["chunks_from_cache"] == report["chunks_total"]
        assert report["requests"]["retries"] == 0 and report["requests"]["rate_limited"] == {}
    # Each worker's job kept its own 2 requests in flight (4 together)...
    assert sum(r["requests"]["peak_in_flight"] for r in reports) == 2 * concurrency
    # ...while both synthesized at the same time (a worker runs one job at a time: two workers)...
    spans = [api.task_span(r["id"], "synthesize") for r in done]
    overlap = min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0])
    assert overlap > 3, spans
    # ...and the account never saw more than its limits: the shared limits held them back.
    account = stats["accounts"][account_label(key)]
    assert account["peak_concurrent_requests"] <= concurrency
    assert account["peak_requests_per_window"] <= rpm
    assert stats["rate_limited_total"] == 0
    shared = AccountLimits(account_id(key), rpm, concurrency)
    concurrency_gcl, rate_gcl = api.concurrency_limit(shared.concurrency_name), api.concurrency_limit(shared.rate_name)
    assert concurrency_gcl is not None and concurrency_gcl["limit"] == concurrency
    assert rate_gcl is not None and rate_gcl["slot_decay_per_second"] > 0
    # The key lived only in the workers' environment: never a Prefect parameter.
    assert all(key not in json.dumps(r["parameters"]) for r in done)


def _first_json_line(log: Path, timeout: float) -> dict[str, Any]:
    def line() -> dict[str, Any] | None:
        found = [x for x in log.read_text(errors="replace").splitlines() if x.startswith("{")]
        return dict(json.loads(found[0])) if found else None

    wait_for(lambda: line() is not None, timeout=timeout, what=f"a JSON line in {log.name}")
    result = line()
    assert result is not None
    return result


@pytest.mark.slow
def test_slots_of_a_killed_process_come_back_within_30_s_and_of_an_ended_one_at_once(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    """A process holding all of an account's slots is SIGKILLed: it cannot give them back,
    but it stops renewing its short leases, so another process has every slot within 30 s
    (with 5-minute leases it waited 5 minutes). A process that ends normally returns them at
    once."""
    import os
    import signal
    import time

    url, home = server
    name, slots = "narrate-test-lease-recovery", 2
    holder = [str(BIN / "python"), "-m", "tests.slot_holder", name, str(slots)]
    env = prefect_env(home, url)
    with started([*holder, "hold"], env, tmp_path / "holder.log", cwd=REPO) as proc:
        _first_json_line(tmp_path / "holder.log", timeout=60)
        time.sleep(8)  # past a renewal: held leases outlive their first term while the holder lives
        os.killpg(proc.pid, signal.SIGKILL)
        killed_at = time.time()
        with started([*holder, "close"], env, tmp_path / "taker.log", cwd=REPO) as taker:
            taken = _first_json_line(tmp_path / "taker.log", timeout=90)
            assert taker.wait(timeout=30) == 0
    recovered_s = taken["acquired_at"] - killed_at
    print(f"slots back {recovered_s:.1f} s after SIGKILL")
    assert recovered_s < 30, f"the killed holder's slots came back after {recovered_s:.1f} s"
    # The taker ended through SharedSlots.close: a third process gets every slot at once.
    with started([*holder, "close"], env, tmp_path / "third.log", cwd=REPO) as third:
        again = _first_json_line(tmp_path / "third.log", timeout=60)
        assert third.wait(timeout=30) == 0
    assert again["waited_s"] < 5, again
