"""Orchestration overhead: what our flow, tasks, cache and bookkeeping cost per chunk.

The jobs of the throughput benchmark, against the emulator with no latency and no limits, so
nothing but the two clients and the emulator's own synthesis (real espeak, one core) sets the
pace. ``narrate run`` and the bare asyncio + httpx script send the same requests; what narrate
spends beyond the script (wall time, CPU time, memory) is the price of everything else it
does: Prefect's flow and tasks, reading and chunking, the chunk cache, assembling chapters,
alignment and the report.

    .venv/bin/python -m bench.bench_overhead [--quick] [--results PATH]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from bench.api_runs import ApiCase, ClientRun, PreparedCase, prepare_case, run_both
from bench.common import (
    WORK_DIR,
    cli_exit,
    machine_details,
    markdown_table,
    publish,
)
from bench.emulated import hosted_emulator
from pipeline.emulator.settings import EmulatorSettings

# In flight for both clients; with no server limit this only bounds the fan-out.
CONCURRENCY = 8

Result = tuple[PreparedCase, ClientRun, ClientRun]


def cases(mode: str) -> list[ApiCase]:
    def case(name: str, chunks: int, max_chars: int) -> ApiCase:
        return ApiCase(name, chunks, max_chars, 0, 0, 0.0, 0.0, client_concurrency=CONCURRENCY)

    if mode == "quick":
        return [case("overhead-quick", 12, 200)]
    return [case("overhead-200", 200, 400), case("overhead-2000", 2000, 120)]


def run_cases(selected: Sequence[ApiCase], work: Path) -> list[Result]:
    results: list[Result] = []
    with hosted_emulator(EmulatorSettings()) as emulator:
        for case in selected:
            print(f"[overhead] {case.name}: {case.chunks} chunks, no latency, no limits", flush=True)
            prepared = prepare_case(case, emulator.url, work)
            narrate, baseline = run_both(prepared, emulator)
            results.append((prepared, narrate, baseline))
    return results


HEADERS = [
    "job",
    "client",
    "whole command s",
    "before first request s",
    "request phase s",
    "after last response s",
    "CPU s",
    "CPU ms/chunk",
    "peak RSS MB (process)",
    "peak RSS MB (tree)",
]


def _row(prepared: PreparedCase, run: ClientRun) -> list[str]:
    p = run.process
    return [
        prepared.case.name,
        run.client,
        f"{p.wall_s:.1f}",
        f"{run.startup_s:.1f}",
        f"{run.clock.span_s:.1f}",
        f"{run.tail_s:.1f}",
        f"{p.cpu_s:.1f}",
        f"{1000 * p.cpu_s / prepared.requests:.1f}",
        f"{p.peak_rss_mb:.0f}",
        f"{p.peak_tree_rss_mb:.0f}",
    ]


def summary(prepared: PreparedCase, narrate: ClientRun, baseline: ClientRun) -> str:
    n = prepared.requests
    wall = 1000 * (narrate.process.wall_s - baseline.process.wall_s) / n
    phase = 1000 * (narrate.clock.span_s - baseline.clock.span_s) / n
    cpu = 1000 * (narrate.process.cpu_s - baseline.process.cpu_s) / n
    return (
        f"- {prepared.case.name} ({n} chunks, {prepared.mean_chars:.0f} characters on average): narrate costs "
        f"{wall:.1f} ms/chunk of wall time beyond the bare script overall ({phase:+.1f} ms/chunk while requests "
        f"flow), {cpu:.1f} ms/chunk of CPU, and {narrate.process.peak_tree_rss_mb:.0f} MB at peak "
        f"(process tree, Prefect's server included) against {baseline.process.peak_tree_rss_mb:.0f} MB."
    )


def marginal(results: Sequence[Result]) -> str:
    """With two job sizes: the cost of one more chunk, which no fixed cost distorts."""
    if len(results) < 2:
        return ""
    (small, ns, _), (large, nl, _) = results[0], results[-1]
    extra = large.requests - small.requests
    if extra <= 0:
        return ""
    wall = 1000 * (nl.process.wall_s - ns.process.wall_s) / extra
    cpu = 1000 * (nl.process.cpu_s - ns.process.cpu_s) / extra
    return (
        f"- one more chunk (from {small.requests} to {large.requests} chunks): {wall:.1f} ms of narrate's wall "
        f"time and {cpu:.1f} ms of its CPU; so its fixed cost is about "
        f"{ns.process.wall_s - small.requests * wall / 1000:.1f} s of wall time per run."
    )


def report(results: Sequence[Result]) -> str:
    rows = [_row(p, run) for p, n, b in results for run in (n, b)]
    lines = [summary(p, n, b) for p, n, b in results]
    if (extra := marginal(results)) != "":
        lines.append(extra)
    explain = (
        f"Emulator: no latency, no limits; both clients keep {CONCURRENCY} requests in flight, so the "
        "emulator's own speech synthesis (one espeak per process) sets the pace of the request phase "
        "for both. CPU is user + system time of the command and the children it waited for (for narrate, "
        "Prefect's embedded server); peak RSS (process) is the kernel's high-water mark, (tree) the "
        "largest sum over the whole process tree, sampled every 100 ms. narrate writes alignment.json "
        "and assembles the chapters but masters no audio file."
    )
    return f"{markdown_table(HEADERS, rows)}\n\n{explain}\n\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Orchestration overhead per chunk against the emulator.")
    parser.add_argument("--quick", action="store_true", help="a tiny job, to check the script works")
    parser.add_argument("--results", type=Path, help="the Markdown file to append to (default bench/RESULTS.md)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "default"
    machine = machine_details()
    results = run_cases(cases(mode), WORK_DIR / "overhead")
    body = report(results)
    publish(
        f"Orchestration overhead ({mode})",
        module="bench.bench_overhead",
        argv=argv,
        body=body,
        machine=machine,
        results=args.results,
        quick=args.quick,
    )
    return 0


if __name__ == "__main__":
    cli_exit(main)
