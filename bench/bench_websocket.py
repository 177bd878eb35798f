"""HTTP versus WebSocket: time to first audio and total time, for one chapter and for the book.

The demo manuscript's chunks go through the real synthesis stage (``synthesize_all``, a fresh
cache each time) with ``engine.transport: http`` (one ``/with_timestamps`` request per chunk,
``max_concurrency`` in flight, ``requests_per_minute`` spacing) and ``websocket`` (one socket
and one context per chapter, groups sent as the previous one's audio completes, chapters in
parallel). The emulator runs as its own process (``narrate emulator``), with the latency
model of bench_api_throughput (200 ms + 1.5 ms a character, per request over HTTP and per piece
of text over the WebSocket) and the demo job's limits (120 rpm, 5 in flight).

- first audio: HTTP, the first reply to arrive whole (its audio comes in one body); WebSocket,
  the first audio frame.
- first chunk: when the book's first chunk (what a player needs first) is complete.
- total: every chunk synthesized and in the cache.

    .venv/bin/python -m bench.bench_websocket [--quick] [--results PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import ROOT, cli_exit, machine_details, markdown_table, publish, write_job
from pipeline.cache import ChunkCache
from pipeline.config import load_job
from pipeline.models import Chunk
from pipeline.prepare import prepare_book
from pipeline.synthesis import synthesize_all
from pipeline.tts.factory import make_engine, worker_count

KEY = "sk_bench_websocket_0001"
VOICE = "e0f39dc4-f691-4e78-bba5-5c636692cc04"
MANUSCRIPT = ROOT / "data" / "manuscripts" / "the-lighthouse-keepers-ledger.md"
LATENCY_MS, PER_CHAR_MS = 200.0, 1.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _emulator(port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "pipeline.emulator", "--port", str(port), "--api-key", KEY]
    cmd += ["--latency-ms", str(LATENCY_MS), "--latency-per-char-ms", str(PER_CHAR_MS)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the emulator did not start")


async def _measure(job_path: Path, chunks: Sequence[Chunk], cache_dir: Path) -> dict[str, Any]:
    cfg = load_job(job_path).config
    engine = make_engine(cfg)
    done_at: dict[str, float] = {}
    inner = engine.synthesize
    start = time.perf_counter()

    async def timed(words: Sequence[str], *, chunk_id: str, need_timings: bool) -> Any:
        audio = await inner(words, chunk_id=chunk_id, need_timings=need_timings)
        done_at[chunk_id] = time.perf_counter() - start
        return audio

    engine.synthesize = timed  # type: ignore[method-assign]
    try:
        result = await synthesize_all(
            chunks,
            engine=engine,
            cache=ChunkCache(cache_dir),
            need_timings=True,
            workers=worker_count(cfg),
            fresh=True,
        )
        total = time.perf_counter() - start
    finally:
        await engine.aclose()
    stats = engine.stats.as_dict()  # type: ignore[attr-defined]
    first_audio = stats.get("first_audio_s") if cfg.engine.transport == "websocket" else min(done_at.values())
    return {
        "ok": len(result.chunks),
        "failed": len(result.failures) + (0 if result.fatal is None else 1),
        "first_audio_s": first_audio,
        "first_chunk_s": done_at.get(chunks[0].id),
        "total_s": total,
        "requests": stats["requests"],
        "retries": stats["retries"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_websocket", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="chapter 1 only, once (a smoke run; not real figures)")
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args(argv)
    machine = machine_details()
    port = _free_port()
    emulator = _emulator(port)
    rows = []
    os.environ["ASYNCAI_API_KEY"] = KEY
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
            folder = Path(tmp)
            for transport in ("http", "websocket"):
                settings = {
                    "engine": {
                        "kind": "asyncflow",
                        "voice": VOICE,
                        "base_url": f"http://127.0.0.1:{port}",
                        "sample_rate": 24000,
                        "transport": transport,
                    },
                    "limits": {"requests_per_minute": 120, "max_concurrency": 5, "retries": 6, "timeout_s": 60},
                    "text": {"max_chars": 400},
                    "outputs": {"subtitles": ["srt"], "alignment": True},
                }
                job_path = write_job(folder / transport, transport, MANUSCRIPT, settings)
                book = prepare_book(load_job(job_path))
                scopes = [("chapter 1", [c for c in book.chunks if c.chapter == 0])]
                if not args.quick:
                    scopes.append(("book (3 chapters)", list(book.chunks)))
                for scope, chunks in scopes:
                    cache = folder / transport / f"cache-{len(chunks)}"
                    got = asyncio.run(_measure(job_path, chunks, cache))
                    chars = sum(len(c.text) for c in chunks)
                    rows.append(
                        [
                            scope,
                            transport,
                            f"{len(chunks)} / {chars}",
                            f"{got['ok']} / {got['failed']}",
                            f"{got['first_audio_s']:.2f}",
                            f"{got['first_chunk_s']:.2f}",
                            f"{got['total_s']:.2f}",
                            f"{got['requests']} / {got['retries']}",
                        ]
                    )
                    print(rows[-1], flush=True)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    headers = [
        "scope",
        "transport",
        "chunks / characters",
        "ok / failed",
        "first audio s",
        "first chunk complete s",
        "total s",
        "requests (HTTP) or sockets / retries",
    ]
    body = (
        f"Emulator as its own process, latency {LATENCY_MS:.0f} ms + {PER_CHAR_MS} ms per character (per request over "
        "HTTP, per piece of text over the WebSocket), real espeak speech; client limits 120 rpm / 5 in flight; "
        "max_chars 400; timings requested (HTTP: /with_timestamps).\n\n" + markdown_table(headers, rows)
    )
    publish(
        "HTTP vs WebSocket: time to first audio and total time",
        module="bench.bench_websocket",
        argv=argv,
        body=body,
        machine=machine,
        results=args.results,
        quick=args.quick,
    )
    return 0


if __name__ == "__main__":
    cli_exit(main)
