"""The demo manuscript through the local engine: how long a user waits.

Three figures, each the median of ``--repeat`` runs of ``narrate run`` as a subprocess (no
Prefect server configured, installed, warm disk):

- ``--fresh`` (every chunk synthesized again): the whole command's wall time;
- the first synthesis: when the first chunk reached the cache, from the command's start
  (an upper bound on the first request: that chunk's speech is done by then);
- every chunk cached (the same job run again): the whole command's wall time.

``--checkout PATH`` runs another source tree of narrate (a ``git worktree`` of an older
commit, say) with this interpreter, so before and after come from one script and one venv.

    .venv/bin/python -m bench.bench_demo [--repeat 3] [--checkout PATH] [--results PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import (
    ROOT,
    WORK_DIR,
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

DEMO = ROOT / "data" / "manuscripts" / "the-lighthouse-keepers-ledger.md"
SETTINGS = {  # the demo job as it was on the local engine (configs/demo.yaml now uses piper)
    "engine": {"kind": "local", "voice": "en-us", "language": "en", "sample_rate": 24000},
    "text": {"max_chars": 400},
    "audio": {"formats": ["wav"], "loudness": "audiobook"},
    "outputs": {"subtitles": ["srt", "vtt"], "alignment": True},
}
GOAL_FRESH_S, GOAL_FIRST_S, GOAL_CACHED_S = 6.0, 2.0, 3.0


def _first_cache_entry(cache: Path, started: float, stop: threading.Event, found: list[float]) -> None:
    while not stop.is_set():
        if cache.is_dir() and any(p.suffix == ".chunk" for p in cache.rglob("*.chunk")):
            found.append(time.perf_counter() - started)
            return
        time.sleep(0.01)


def run_once(job: Path, cache: Path, env: dict[str, str], tree: Path, *, fresh: bool) -> tuple[float, float | None]:
    """(wall s, first chunk in the cache s) of one ``narrate run``."""
    if fresh:
        shutil.rmtree(cache, ignore_errors=True)  # a new entry marks the first synthesis
    found: list[float] = []
    stop = threading.Event()
    started = time.perf_counter()
    watcher = threading.Thread(target=_first_cache_entry, args=(cache, started, stop, found), daemon=True)
    watcher.start()
    args = ["run", str(job), "--quiet"] + (["--fresh"] if fresh else [])
    process = run_measured(narrate_command(*args), env=env, cwd=tree).check(f"narrate run {job}")
    stop.set()
    watcher.join()
    return process.wall_s, (found[0] if found and fresh else None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Wall time of the demo through the local engine.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkout", type=Path, help="another narrate source tree to measure (default: this one)")
    parser.add_argument("--quick", action="store_true", help="one run of each, to check the script works")
    parser.add_argument("--results", type=Path, help="the Markdown file to append to (default bench/RESULTS.md)")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else args.repeat
    tree = (args.checkout or ROOT).resolve()
    folder = WORK_DIR / "demo"
    shutil.rmtree(folder, ignore_errors=True)
    job = write_job(folder, "demo-local", DEMO, SETTINGS)
    env = narrate_env({"PYTHONPATH": str(tree)})
    env.pop("PREFECT_API_URL", None)
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    machine = machine_details()
    run_once(job, folder / "cache", env, tree, fresh=True)  # warm the disk and the interpreter's files
    fresh = [run_once(job, folder / "cache", env, tree, fresh=True) for _ in range(repeat)]
    cached = [run_once(job, folder / "cache", env, tree, fresh=False)[0] for _ in range(repeat)]
    wall = statistics.median(w for w, _ in fresh)
    firsts = [f for _, f in fresh if f is not None]
    first = statistics.median(firsts) if firsts else float("nan")
    again = statistics.median(cached)
    rows = [
        ["--fresh, whole command", f"{wall:.2f}", ", ".join(f"{w:.2f}" for w, _ in fresh), f"<= {GOAL_FRESH_S:g}",
         verdict(wall <= GOAL_FRESH_S)],
        ["first chunk in the cache", f"{first:.2f}", ", ".join(f"{f:.2f}" for f in firsts), f"<= {GOAL_FIRST_S:g}",
         verdict(first <= GOAL_FIRST_S)],
        ["all chunks cached, whole command", f"{again:.2f}", ", ".join(f"{w:.2f}" for w in cached),
         f"< {GOAL_CACHED_S:g}", verdict(again < GOAL_CACHED_S)],
    ]  # fmt: skip
    body = (
        f"Source tree: `{tree}` at {commit.stdout.strip() or '?'}. The demo manuscript (1,454 words, 54 chunks, "
        f"10.6 min of audio) through the local engine: mastered WAV per chapter and for the book, SRT, WebVTT, "
        f"alignment.json; no Prefect server configured. Median of {repeat} runs after one warm-up.\n\n"
        + markdown_table(["figure", "median s", "runs s", "goal s", "verdict"], rows)
    )
    shutil.rmtree(folder, ignore_errors=True)
    publish(
        "Demo through the local engine",
        module="bench.bench_demo",
        argv=argv,
        body=body,
        machine=machine,
        results=args.results,
        quick=args.quick,
    )
    return 0


if __name__ == "__main__":
    cli_exit(main)
