"""Every benchmark, one after another: what ``make bench`` runs.

Each script runs in a process of its own (a clean interpreter, its own peak memory), prints
its figures and appends them to bench/RESULTS.md; a failing script is reported and the others
still run. At the end: how long each took, against the 15-minute budget for the whole run.

    .venv/bin/python -m bench.run_all [--quick | --full] [--only NAME ...] [--skip NAME ...]
                                      [--mastering-hours H] [--results PATH]

``--quick`` runs each script on a tiny input (a check that they all still work); ``--full``
runs the issue's literal cases: the API jobs at 120 rpm (2,000 chunks: about 17 minutes on
their own) and mastering a 10-hour book.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    RESULTS_PATH,
    ROOT,
    append_results,
    cli_exit,
    ensure_results_file,
    machine_details,
    markdown_table,
    narrate_env,
    reproduce_command,
    results_path,
)

BUDGET_S = 15 * 60
# Hours of audio for the post-processing benchmark. The case is a 10-hour book, but
# mastering it three ways (narrate, ffmpeg two-pass loudnorm, a whole-file pydub join) takes
# far longer than the whole run's budget on 2 cores, so the default is half an hour and
# --full runs the 10 hours.
MASTERING_HOURS = {"quick": 0.02, "default": 0.5, "full": 10.0}


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    command: list[str]


def plan(mode: str, results: Path, mastering_hours: float | None = None) -> list[Step]:
    def module(name: str, *args: str) -> list[str]:
        return [sys.executable, "-m", f"bench.{name}", *args]

    sized = ["--quick"] if mode == "quick" else []
    into = [] if results == RESULTS_PATH else ["--results", str(results)]
    api = ["--full"] if mode == "full" else sized
    # bench_mastering has its own options: a length, and printing without appending.
    hours = MASTERING_HOURS[mode] if mastering_hours is None else mastering_hours
    mastering = ["--hours", f"{hours:g}"] + (["--no-append"] if mode == "quick" or results != RESULTS_PATH else [])
    return [
        Step("api_throughput", module("bench_api_throughput", *api, *into)),
        Step("overhead", module("bench_overhead", *sized, *into)),
        Step("local_engine", module("bench_local_engine", *sized, *into)),
        Step("mastering", module("bench_mastering", *mastering)),
        Step("scaling", module("bench_scaling", *sized, *into)),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="tiny inputs: check that every script works")
    group.add_argument("--full", action="store_true", help="the issue's literal API case (about 17 extra minutes)")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="run only these steps")
    parser.add_argument("--skip", nargs="+", default=[], metavar="NAME", help="leave these steps out")
    parser.add_argument("--mastering-hours", type=float, help="hours of audio to master (default 0.5; --full 10)")
    parser.add_argument("--results", type=Path, help="the Markdown file to append to (default bench/RESULTS.md)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full" if args.full else "default"
    results = results_path(args.results, quick=args.quick).resolve()
    steps = plan(mode, results, args.mastering_hours)
    known = {s.name for s in steps}
    unknown = sorted(set(args.only + args.skip) - known)
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}; the steps are {', '.join(sorted(known))}")
    steps = [s for s in steps if (not args.only or s.name in args.only) and s.name not in args.skip]
    machine = machine_details()
    ensure_results_file(results)
    rows = []
    failed = []
    started = time.perf_counter()
    for step in steps:
        print(f"\n=== {step.name}: {' '.join(step.command[1:])}", flush=True)
        began = time.perf_counter()
        status = subprocess.run(step.command, cwd=ROOT, env=narrate_env(), check=False).returncode
        took = time.perf_counter() - began
        rows.append([step.name, f"{took:.0f}", "ok" if status == 0 else f"FAILED (exit {status})"])
        if status != 0:
            failed.append(step.name)
    total = time.perf_counter() - started
    within = "within" if total <= BUDGET_S else "OVER"
    body = (
        f"{markdown_table(['step', 'seconds', 'result'], rows)}\n\n"
        f"Total {total:.0f} s ({total / 60:.1f} min): {within} the {BUDGET_S // 60}-minute budget."
    )
    print(f"\n{body}")
    append_results(
        f"Whole run: bench.run_all ({mode})",
        command=reproduce_command("bench.run_all", list(argv if argv is not None else sys.argv[1:])),
        body=body,
        machine=machine,
        results=results,
    )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    cli_exit(main)
