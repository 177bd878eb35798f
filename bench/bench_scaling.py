"""Scaling: how ``narrate run`` grows with the book, from 1,000 to 10,000 to 100,000 words.

Each size is a synthetic manuscript (the smaller ones are prefixes of the larger) run cold
(empty cache) through the local engine, as a subprocess measured from outside: wall time, CPU
time and peak memory of the whole process tree. Time should grow linearly with the words and
memory should stay flat: every stage streams, so nothing held in memory should be as long as
the book except the text and the timings.

    .venv/bin/python -m bench.bench_scaling [--quick] [--words 1000 10000 100000]
                                            [--outputs lean|full] [--results PATH]

``--outputs lean`` (the default) writes alignment.json and assembles every chapter but
masters no audio file; ``full`` is the demo job's outputs (mastered WAV per chapter and for the
book, SRT and WebVTT, alignment), whose mastering dominates and has its own benchmark.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.api_runs import lean_outputs
from bench.common import (
    MANUSCRIPTS_DIR,
    WORK_DIR,
    ProcessMeasure,
    cli_exit,
    machine_details,
    markdown_table,
    narrate_command,
    narrate_env,
    publish,
    run_measured,
    verdict,
    write_job,
)
from bench.manuscripts import words_manuscript

# The growth we still call linear / flat: the cost of a word in the larger step at most this
# much above the smaller step's, and peak memory of the largest book at most this much above
# the smallest's.
LINEAR_TOLERANCE = 1.25
FLAT_TOLERANCE = 1.5


def full_outputs() -> dict[str, Any]:
    return {
        "audio": {"formats": ["wav"], "loudness": "audiobook"},
        "outputs": {"subtitles": ["srt", "vtt"], "alignment": True},
    }


@dataclass(frozen=True, slots=True)
class SizeRun:
    words: int
    report: dict[str, Any]
    process: ProcessMeasure

    @property
    def audio_h(self) -> float:
        return float(self.report["audio_seconds"]) / 3600


def run_size(words: int, outputs: str, work: Path) -> SizeRun:
    manuscript = words_manuscript(MANUSCRIPTS_DIR, words)
    folder = work / f"words-{words}"
    shutil.rmtree(folder, ignore_errors=True)  # cold: empty cache, no earlier outputs
    settings = {
        "engine": {"kind": "local", "voice": "en-us", "sample_rate": 24000},
        "text": {"max_chars": 400},
        **(lean_outputs() if outputs == "lean" else full_outputs()),
    }
    job = write_job(folder, f"scaling-{words}", manuscript, settings)
    process = run_measured(narrate_command("run", str(job), "--quiet"), env=narrate_env()).check(f"narrate run {job}")
    report = json.loads((folder / "out" / "report.json").read_text(encoding="utf-8"))
    shutil.rmtree(folder, ignore_errors=True)  # hours of audio: gigabytes nobody will look at
    return SizeRun(words, report, process)


HEADERS = [
    "words",
    "chunks",
    "speech h",
    "wall s",
    "s per 1,000 words",
    "CPU s",
    "peak RSS MB (process)",
    "peak RSS MB (tree)",
]


def _row(run: SizeRun) -> list[str]:
    p = run.process
    return [
        f"{run.words:,}",
        f"{run.report['chunks_total']:,}",
        f"{run.audio_h:.2f}",
        f"{p.wall_s:.1f}",
        f"{1000 * p.wall_s / run.words:.2f}",
        f"{p.cpu_s:.1f}",
        f"{p.peak_rss_mb:.0f}",
        f"{p.peak_tree_rss_mb:.0f}",
    ]


def judge(runs: Sequence[SizeRun]) -> list[str]:
    """Growth between sizes: time per word from step to step, and peak memory."""
    if len(runs) < 2:
        return ["- one size only: no growth to judge"]
    lines = []
    steps = list(pairwise(runs))
    per_word = [(b.process.wall_s - a.process.wall_s) / (b.words - a.words) for a, b in steps]
    for (a, b), cost in zip(steps, per_word, strict=True):
        lines.append(f"- from {a.words:,} to {b.words:,} words: {1000 * cost:.2f} s per 1,000 more words")
    if len(per_word) >= 2 and per_word[0] > 0:
        growth = per_word[-1] / per_word[0]
        lines.append(
            f"- time: the last step costs {growth:.2f}x per word what the first did "
            f"(linear if <= {LINEAR_TOLERANCE}x): {verdict(growth <= LINEAR_TOLERANCE)}"
        )
    memory = runs[-1].process.peak_rss_mb / runs[0].process.peak_rss_mb
    lines.append(
        f"- memory: peak RSS of narrate's process {runs[0].process.peak_rss_mb:.0f} MB at {runs[0].words:,} words, "
        f"{runs[-1].process.peak_rss_mb:.0f} MB at {runs[-1].words:,} ({memory:.2f}x; flat if <= "
        f"{FLAT_TOLERANCE}x): {verdict(memory <= FLAT_TOLERANCE)}"
    )
    if memory > FLAT_TOLERANCE:
        lines.append(
            "  - why (found with tracemalloc on the 100,000-word job when this benchmark was written): "
            "audio streams, but alignment.json does not. The render stage builds the whole alignment "
            "document (about 40 MB of Python objects at 100,000 words) and write_json_atomic then "
            "serializes it to one string and its bytes (about 220 MB more at the peak); the text stage's "
            "words and sentences add about 25 MB. Fix: write alignment.json as a stream (one word entry "
            "at a time, still to a temporary file renamed into place), which keeps the peak flat."
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="How narrate run grows with the book.")
    parser.add_argument("--quick", action="store_true", help="one tiny book, to check the script works")
    parser.add_argument("--words", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--outputs", choices=["lean", "full"], default="lean")
    parser.add_argument("--results", type=Path, help="the Markdown file to append to (default bench/RESULTS.md)")
    args = parser.parse_args(argv)
    # --quick: one tiny book, a check that the script works (judge() is tested on its own).
    sizes = [300] if args.quick else sorted(set(args.words))
    if not args.quick and len(sizes) < 2:
        parser.error("give at least two sizes")
    machine = machine_details()
    runs = []
    for words in sizes:
        print(f"[scaling] {words:,} words ({args.outputs} outputs)", flush=True)
        runs.append(run_size(words, args.outputs, WORK_DIR / "scaling"))
    what = (
        "lean outputs: alignment.json, chapters assembled, no audio file mastered"
        if args.outputs == "lean"
        else "full outputs: mastered WAV per chapter and for the book, SRT, WebVTT, alignment.json"
    )
    body = (
        f"`narrate run`, local engine, cold cache, {what}. Wall and CPU time are the whole command's "
        f"(CPU includes the children it waited for: Prefect's server, engine processes).\n\n"
        f"{markdown_table(HEADERS, [_row(r) for r in runs])}\n\n" + "\n".join(judge(runs))
    )
    publish(
        f"Scaling ({'quick' if args.quick else args.outputs + ' outputs'})",
        module="bench.bench_scaling",
        argv=argv,
        body=body,
        machine=machine,
        results=args.results,
        quick=args.quick,
    )
    return 0


if __name__ == "__main__":
    cli_exit(main)
