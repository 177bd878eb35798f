"""Running the emulator: in a background thread (tests, benchmarks) or as ``narrate emulator``.

It listens on loopback only: by default it accepts any key, so it must never face a network.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from pydantic import ValidationError

from pipeline.emulator.app import create_app
from pipeline.emulator.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_RPM,
    EmulatorSettings,
    FaultKind,
    WsFaultKind,
    parse_faults,
    parse_ws_faults,
)
from pipeline.emulator.state import EmulatorState

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_START_TIMEOUT_S = 15.0


@dataclass
class RunningEmulator:
    """A started server: where it listens, and its live state (stats, settings, voices)."""

    url: str
    port: int
    state: EmulatorState

    def stats(self) -> dict[str, Any]:
        return self.state.snapshot()

    def reset(self) -> None:
        self.state.reset()

    def configure(self, **changes: Any) -> EmulatorSettings:
        return self.state.configure(**changes)


def _check_host(host: str) -> None:
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"--host {host!r}: the emulator listens on loopback only (127.0.0.1, ::1, localhost)")


def _server(state: EmulatorState, host: str, port: int, log_level: str, access_log: bool) -> uvicorn.Server:
    _check_host(host)
    config = uvicorn.Config(
        create_app(state=state),
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        lifespan="off",
        # Shutdown must not wait on a client that keeps a connection open.
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def _bound(server: uvicorn.Server, host: str) -> tuple[str, int]:
    port = int(server.servers[0].sockets[0].getsockname()[1])
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}", port


@contextmanager
def serve_in_thread(
    settings: EmulatorSettings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
) -> Iterator[RunningEmulator]:
    """Start the emulator on ``host:port`` (0 = a free port) in a daemon thread; stop on exit."""
    state = EmulatorState(settings or EmulatorSettings())
    server = _server(state, host, port, log_level, access_log=False)
    # uvicorn installs signal handlers only in the main thread, so a test's Ctrl-C still works.
    thread = threading.Thread(target=server.run, name="asyncflow-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the emulator did not start on {host}:{port}")
        time.sleep(0.01)
    url, bound_port = _bound(server, host)
    try:
        yield RunningEmulator(url, bound_port, state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="narrate emulator",
        description="Serve the AsyncFlow text-to-speech API on loopback, backed by local espeak-ng speech.",
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8200, help="port; 0 picks a free one (default 8200)")
    p.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="an accepted key (repeatable); none given: any non-empty key",
    )
    p.add_argument(
        "--rpm",
        type=int,
        default=DEFAULT_RPM,
        help=f"requests per minute per key, 0 = unlimited (default {DEFAULT_RPM})",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"requests in flight per key, 0 = unlimited (default {DEFAULT_CONCURRENCY})",
    )
    p.add_argument(
        "--monthly-chars",
        type=int,
        default=None,
        help="characters per key before 429 USAGE_LIMIT_EXCEEDED (default unlimited)",
    )
    p.add_argument(
        "--fail-rate",
        type=float,
        default=0.0,
        help="fraction of synthesis requests that fail (0..1)",
    )
    p.add_argument(
        "--faults",
        default="all",
        help="fault kinds, comma-separated: " + ",".join(k.value for k in FaultKind) + " (default all)",
    )
    p.add_argument(
        "--ws-faults",
        default="all",
        help="WebSocket fault kinds (drawn with --fail-rate), comma-separated: "
        + ",".join(k.value for k in WsFaultKind)
        + " (default all)",
    )
    p.add_argument(
        "--ws-idle-timeout-s",
        type=float,
        default=60.0,
        help="a WebSocket with no message for this long gets a TIMEOUT error frame (default 60)",
    )
    p.add_argument("--latency-ms", type=float, default=0.0, help="added to every synthesis request")
    p.add_argument("--latency-per-char-ms", type=float, default=0.0, help="added per transcript character")
    p.add_argument("--seed", type=int, default=0, help="seed for fault injection")
    p.add_argument(
        "--flat-errors",
        action="store_true",
        help='error bodies as {"error_code", ...} instead of {"detail": {...}}',
    )
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    return p


def settings_from_args(args: argparse.Namespace) -> EmulatorSettings:
    return EmulatorSettings(
        api_keys=tuple(args.api_key),
        rpm=args.rpm,
        concurrency=args.concurrency,
        monthly_chars=args.monthly_chars,
        fail_rate=args.fail_rate,
        faults=parse_faults(args.faults),
        ws_faults=parse_ws_faults(args.ws_faults),
        ws_idle_timeout_s=args.ws_idle_timeout_s,
        latency_ms=args.latency_ms,
        latency_per_char_ms=args.latency_per_char_ms,
        seed=args.seed,
        flat_errors=args.flat_errors,
    )


async def _run(server: uvicorn.Server, host: str) -> None:
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # surfaces the startup failure
            return
        await asyncio.sleep(0.01)
    url, _ = _bound(server, host)
    print(f"emulator listening on {url}", flush=True)
    await task


def main(argv: Sequence[str] | None = None) -> int:
    """``narrate emulator [flags]``: serve until interrupted. Returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        _check_host(args.host)
    except ValidationError as exc:
        first = exc.errors()[0]
        option = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "options"
        print(f"narrate emulator: {option}: {first['msg']}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"narrate emulator: {exc}", file=sys.stderr)
        return 2
    server = _server(
        EmulatorState(settings),
        args.host,
        args.port,
        args.log_level,
        access_log=args.log_level in ("info", "debug"),
    )
    try:
        asyncio.run(_run(server, args.host))
    except KeyboardInterrupt:
        pass
    except (OSError, SystemExit):  # uvicorn exits when it cannot bind (port taken)
        server.started = False
    if not server.started:
        print(f"narrate emulator: cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    return 0
