"""A real ``prefect server start`` on loopback for integration tests, and helpers to drive it.

Every process started here gets its own process group and is killed with it, whatever the
test did; the server keeps its database in a private PREFECT_HOME.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

BIN = Path(sys.executable).parent
T = TypeVar("T")

TERMINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prefect_env(home: Path, api_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment for a server, worker or CLI child: quiet, private, fast to react."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        # React in about a second instead of Prefect's default 5-10 s polls.
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_HEARTBEAT_SECONDS="5",
        PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS="1",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group, then SIGKILL what is left after a grace period."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; children in its group (flow runs) get the same signal once more.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return


@contextmanager
def started(
    argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[Any]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop(proc)


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@contextmanager
def prefect_server(home: Path, *, timeout: float = 120) -> Iterator[str]:
    """Start ``prefect server start`` on a free loopback port; yield its API URL once healthy."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    argv = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"]
    log = home / "server.log"
    with started(argv, prefect_env(home), log) as proc:

        def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"prefect server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=timeout, what="prefect server /api/health")
        yield url


class Api:
    """The few Prefect REST calls the tests make (plain HTTP: the test process's own Prefect
    settings stay untouched)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # A loaded machine makes the server's SQLite database briefly busy, which it answers
        # with 503: that is the server asking us to come back, not a failure of what we test.
        for attempt in range(20):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TimeoutException:
                # The same, when the server is too busy to answer in time: a read is safe to
                # ask again (a POST is not: it may have been done).
                if method != "GET" or attempt == 19:
                    raise
                continue
            if response.status_code != 503:
                break
            time.sleep(1)
        response.raise_for_status()
        return response

    def deployment(self, name: str) -> dict[str, Any]:
        response = self._request("GET", f"/deployments/name/{name}")
        return dict(response.json())

    def run_deployment(self, name: str, parameters: dict[str, Any] | None = None) -> str:
        dep = self.deployment(name)
        response = self._request(
            "POST", f"/deployments/{dep['id']}/create_flow_run", json={"parameters": parameters or {}}
        )
        return str(response.json()["id"])

    def flow_run(self, run_id: str) -> dict[str, Any]:
        response = self._request("GET", f"/flow_runs/{run_id}")
        return dict(response.json())

    def finished(self, run_id: str) -> dict[str, Any] | None:
        """The run once it reached a terminal state, else None."""
        run = self.flow_run(run_id)
        return run if state_of(run) in TERMINAL_STATES else None

    def flow_runs(self, deployment_id: str) -> list[dict[str, Any]]:
        body = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
        response = self._request("POST", "/flow_runs/filter", json=body)
        return list(response.json())

    def task_span(self, flow_run_id: str, name: str) -> tuple[float, float]:
        """(start, end) of the flow run's task called ``name``, as POSIX times."""
        body = {"flow_runs": {"id": {"any_": [flow_run_id]}}}
        response = self._request("POST", "/task_runs/filter", json=body)
        [task] = [t for t in response.json() if t["name"].split("-")[0] == name]
        return _posix(task["start_time"]), _posix(task["end_time"])

    def artifacts(self, flow_run_id: str) -> list[dict[str, Any]]:
        response = self._request(
            "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
        )
        return list(response.json())

    def concurrency_limit(self, name: str) -> dict[str, Any] | None:
        response = self.http.get(f"/v2/concurrency_limits/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())


def _posix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def state_of(run: dict[str, Any]) -> str:
    return str((run.get("state") or {}).get("type", ""))
