"""The local engine: words per second, real-time factor and memory, on every core.

A synthetic manuscript of 100,000 words (about ten hours of speech) is read and chunked as
narrate does, then every chunk is spoken by the local espeak-ng engine: once through
LocalPoolEngine (one process per core, pipeline/tts/local_pool.py) and, on a 10,000-word
sample, through the single-process LocalEngine, to show what the pool buys. Each measurement
runs in a subprocess of its own so its peak memory (pool workers included) is its own.

    .venv/bin/python -m bench.bench_local_engine [--quick] [--words N] [--results PATH]

Only the engine is timed (no cache, no files): the figures are the engine's ceiling, which
``narrate run`` approaches when its fan-out keeps every process busy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    MANUSCRIPTS_DIR,
    ROOT,
    ProcessMeasure,
    cli_exit,
    machine_details,
    markdown_table,
    narrate_env,
    publish,
    run_measured,
)
from bench.manuscripts import book_chunks, words_manuscript
from pipeline.tts.base import Engine
from pipeline.tts.local import LocalEngine
from pipeline.tts.local_pool import LocalPoolEngine, default_processes

SAMPLE_RATE = 24000
MAX_CHARS = 400
VOICE = "en-us"


async def _speak_all(manuscript: Path, processes: int) -> dict[str, Any]:
    started = time.perf_counter()
    chunks = book_chunks(manuscript, MAX_CHARS)
    prepared_s = time.perf_counter() - started
    engine: Engine
    if processes > 1:
        engine = LocalPoolEngine(voice=VOICE, sample_rate=SAMPLE_RATE, processes=processes)
    else:
        engine = LocalEngine(voice=VOICE, sample_rate=SAMPLE_RATE)
    await engine.check()  # starts the pool: process start-up is not synthesis
    samples = 0
    pending = iter(chunks)

    async def worker() -> None:
        nonlocal samples
        for chunk in pending:
            audio = await engine.synthesize(chunk.spoken_words, chunk_id=chunk.id, need_timings=True)
            samples += len(audio.samples)

    started = time.perf_counter()
    # Two chunks per process in flight: one being spoken, one being handed over.
    await asyncio.gather(*(worker() for _ in range(2 * processes)))
    synth_s = time.perf_counter() - started
    await engine.aclose()
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "parent_cpu_s": own.ru_utime + own.ru_stime,  # this process only: not the pool's workers
        "chunks": len(chunks),
        "words": sum(len(c.words) for c in chunks),
        "audio_s": samples / SAMPLE_RATE,
        "synth_s": synth_s,
        "prepare_s": prepared_s,
    }


def child(manuscript: Path, processes: int) -> int:
    print(json.dumps(asyncio.run(_speak_all(manuscript, processes))))
    return 0


def measure(manuscript: Path, processes: int) -> tuple[dict[str, Any], ProcessMeasure]:
    cmd = [sys.executable, "-m", "bench.bench_local_engine", "--child", str(manuscript), "--processes", str(processes)]
    process = run_measured(cmd, env=narrate_env(), cwd=ROOT).check(f"local engine, {processes} process(es)")
    return json.loads(process.stdout.strip().splitlines()[-1]), process


HEADERS = [
    "engine",
    "words",
    "chunks",
    "speech h",
    "synthesis s",
    "words/s",
    "real-time factor",
    "x real time",
    "CPU s (all processes)",
    "peak RSS MB (tree)",
]


def _row(name: str, figures: dict[str, Any], process: ProcessMeasure) -> list[str]:
    rtf = figures["synth_s"] / figures["audio_s"]
    return [
        name,
        f"{figures['words']:,}",
        f"{figures['chunks']:,}",
        f"{figures['audio_s'] / 3600:.2f}",
        f"{figures['synth_s']:.1f}",
        f"{figures['words'] / figures['synth_s']:.0f}",
        f"{rtf:.4f}",
        f"{1 / rtf:.0f}",
        f"{process.cpu_s:.1f}",
        f"{process.peak_tree_rss_mb:.0f}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local engine speed and memory on every core.")
    parser.add_argument("--quick", action="store_true", help="a tiny manuscript, to check the script works")
    parser.add_argument("--words", type=int, default=100_000, help="manuscript size for the pool run")
    parser.add_argument("--results", type=Path, help="the Markdown file to append to (default bench/RESULTS.md)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.processes)
    words = 1000 if args.quick else args.words
    sample_words = min(words, 300 if args.quick else 10_000)
    processes = default_processes()
    machine = machine_details()
    print(f"[local] {processes} processes, {words:,} words; one process, {sample_words:,} words", flush=True)
    pool = measure(words_manuscript(MANUSCRIPTS_DIR, words), processes)
    single = measure(words_manuscript(MANUSCRIPTS_DIR, sample_words), 1)
    rows = [
        _row(f"LocalPoolEngine, {processes} processes", *pool),
        _row("LocalEngine, 1 process", *single),
    ]
    speedup = (pool[0]["words"] / pool[0]["synth_s"]) / (single[0]["words"] / single[0]["synth_s"])
    body = (
        f"{markdown_table(HEADERS, rows)}\n\n"
        f"The pool speaks {speedup:.2f}x as many words a second as one process on {processes} cores. "
        f"Of its {pool[1].cpu_s:.1f} s of CPU, {pool[0]['parent_cpu_s']:.1f} s were spent by the process that "
        f"hands out the chunks and receives the audio (reading the manuscript, unpickling "
        f"{pool[0]['audio_s'] * SAMPLE_RATE * 2 / 1e9:.1f} GB of samples from the workers), on the same cores "
        f"as the workers. "
        f"Real-time factor is synthesis time over speech duration (lower is faster); words are the "
        f"manuscript's words as chunked with max_chars {MAX_CHARS}; {SAMPLE_RATE} Hz output; the synthesis "
        f"time excludes reading the manuscript (pool run: {pool[0]['prepare_s']:.1f} s) and starting processes."
    )
    publish(
        f"Local engine ({'quick' if args.quick else f'{words:,} words'})",
        module="bench.bench_local_engine",
        argv=argv,
        body=body,
        machine=machine,
        results=args.results,
        quick=args.quick,
    )
    return 0


if __name__ == "__main__":
    cli_exit(main)
