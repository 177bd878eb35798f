"""What every benchmark shares: where things go, how a subprocess is measured, how results are
written down.

Results are appended to bench/RESULTS.md, never rewritten: each run adds a dated section with
the machine it ran on (including the load average, because a busy 2-core machine halves what
anything measures) and the exact command that reproduces it.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import yaml

from pipeline.errors import NarrateError

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "work"  # scratch: manuscripts, caches, outputs (git-ignored)
MANUSCRIPTS_DIR = WORK_DIR / "manuscripts"  # shared by the benchmarks
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
QUICK_RESULTS_PATH = WORK_DIR / "RESULTS-quick.md"  # where --quick runs go unless told: not real figures
RESULTS_HEADER = """# Benchmark results

Appended by the scripts in `bench/` (`make bench` runs them all); newest last. Each section
names the machine, its load when the run started, and the command that reproduces it. Never
edit a section after the fact: rerun and append.
"""


# --- the machine ----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip() or "unknown"
    return commit + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def machine_details() -> dict[str, str]:
    memory = _memory_gb()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    return {
        "cpu": f"{_cpu_model()}, {cores} cores available",
        "memory": f"{memory:.1f} GB" if memory else "unknown",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": _git_commit(),
        "load average at start (1/5/15 min)": " / ".join(f"{x:.2f}" for x in load),
    }


# --- results ----------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def reproduce_command(module: str, argv: Sequence[str]) -> str:
    """How to rerun exactly this: the module with the arguments it was given."""
    return " ".join([".venv/bin/python", "-m", module, *(shlex.quote(a) for a in argv)])


def results_path(given: Path | None, *, quick: bool) -> Path:
    """The file a run appends to: the one given, else RESULTS.md, or a scratch file for a
    ``--quick`` run (a check that the scripts work, whose figures mean nothing)."""
    if given is not None:
        return given
    return QUICK_RESULTS_PATH if quick else RESULTS_PATH


def ensure_results_file(results: Path = RESULTS_PATH) -> None:
    """Create ``results`` with its header when it is missing or empty; never touch it else."""
    results.parent.mkdir(parents=True, exist_ok=True)
    if not results.exists() or not results.read_text(encoding="utf-8").strip():
        results.write_text(RESULTS_HEADER, encoding="utf-8")


def append_results(
    title: str,
    *,
    command: str,
    body: str,
    machine: Mapping[str, str],
    results: Path = RESULTS_PATH,
) -> None:
    """Add one dated section to ``results`` (created with its header when missing)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    details = "\n".join(f"- {key}: {value}" for key, value in machine.items())
    section = f"\n## {title} ({stamp})\n\n{details}\n\nReproduce: `{command}`\n\n{body.strip()}\n"
    ensure_results_file(results)
    with results.open("a", encoding="utf-8") as f:
        f.write(section)


def publish(
    title: str,
    *,
    module: str,
    argv: Sequence[str] | None,
    body: str,
    machine: Mapping[str, str],
    results: Path | None,
    quick: bool,
) -> None:
    """Print a benchmark's figures and append them, with how to rerun it, to the results file."""
    print(body)
    append_results(
        title,
        command=reproduce_command(module, list(argv if argv is not None else sys.argv[1:])),
        body=body,
        machine=machine,
        results=results_path(results, quick=quick),
    )


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def cli_exit(main: Callable[[Sequence[str] | None], int]) -> NoReturn:
    """Run a benchmark's ``main`` as a command: a failure is one line and exit status 1."""
    try:
        status = main(None)
    except (RuntimeError, OSError, NarrateError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)


# --- measuring a subprocess -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessMeasure:
    """One finished subprocess. ``cpu_s`` is user + system time of the process and every child
    it waited for (from the kernel); ``peak_rss_mb`` is the process's own resident-memory
    high-water mark (VmHWM, read every 100 ms, so a peak in its last 100 ms can be missed);
    ``peak_tree_rss_mb`` is the largest sum of the resident sets of the whole process tree at
    any 100 ms sample (Prefect's server included)."""

    returncode: int
    started_at: float  # time.monotonic() just before the process was started
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    peak_tree_rss_mb: float
    stdout: str
    stderr: str

    def check(self, what: str) -> ProcessMeasure:
        if self.returncode != 0:
            tail = (self.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"{what} exited with status {self.returncode}: {tail}")
        return self


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _rss_bytes(pid: int) -> int:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _hwm_bytes(pid: int) -> int:
    """The process's own resident-memory high-water mark (VmHWM), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, now."""
    tree = _children()
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(tree.get(pid, ()))
    return found


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants now."""
    return sum(_rss_bytes(pid) for pid in descendants(root))


class _TreeSampler(threading.Thread):
    """Samples the tree's resident memory every ``interval_s``. Finding the tree means reading
    every process's stat file (about 15 ms on a busy machine), so that is done once a second;
    the known members' memory is read at every sample."""

    RESCAN_S = 1.0

    def __init__(self, pid: int, interval_s: float) -> None:
        super().__init__(name=f"rss-sampler-{pid}", daemon=True)
        self.pid = pid
        self.interval_s = interval_s
        self.peak = 0
        self.root_peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        members: list[int] = [self.pid]
        scanned = 0.0
        while not self.stop.is_set():
            if time.monotonic() - scanned >= self.RESCAN_S:
                members = descendants(self.pid)
                scanned = time.monotonic()
            self.peak = max(self.peak, sum(_rss_bytes(pid) for pid in members))
            self.root_peak = max(self.root_peak, _hwm_bytes(self.pid))
            self.stop.wait(self.interval_s)


def run_measured(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    sample_interval_s: float = 0.1,
    timeout_s: float = 3600,
) -> ProcessMeasure:
    """Run ``cmd`` to completion and measure it. Output goes through files (a pipe nobody
    reads could block the child); ``os.wait4`` gives this child's own resource usage."""
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8") as out,
        tempfile.TemporaryFile("w+", encoding="utf-8") as err,
    ):
        started_at = time.monotonic()
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), env=dict(env) if env is not None else None, cwd=cwd, stdout=out, stderr=err)
        sampler = _TreeSampler(proc.pid, sample_interval_s)
        sampler.start()
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            sampler.stop.set()
        wall = time.perf_counter() - started
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        out.seek(0)
        err.seek(0)
        return ProcessMeasure(
            returncode=proc.returncode,
            started_at=started_at,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            # Not usage.ru_maxrss: it counts the pages the child shared with this process between
            # fork and exec, so a small child would inherit the bench process's size.
            peak_rss_mb=sampler.root_peak / 1024 / 1024,
            peak_tree_rss_mb=sampler.peak / 1024 / 1024,
            stdout=out.read(),
            stderr=err.read(),
        )


# --- narrate jobs ----------------------------------------------------------------------------


def narrate_command(*args: str) -> list[str]:
    """``narrate ARGS`` with this interpreter, so the bench measures the checkout it runs in."""
    return [sys.executable, "-m", "pipeline.cli", *args]


def narrate_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for ``narrate run``: Prefect's embedded server kept in a home of its
    own (created, so its database can be opened), quiet, and not phoning home."""
    home = WORK_DIR / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_HOME": str(home),
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra or {})
    return env


def write_job(folder: Path, name: str, manuscript: Path, settings: Mapping[str, Any]) -> Path:
    """A job file in ``folder`` reading ``manuscript``; ``settings`` are top-level keys of the
    job (engine, limits, audio, outputs, ...). Output and cache go under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    job: dict[str, Any] = {
        "name": name,
        "title": f"Benchmark {name}",
        "input": {"files": [str(manuscript.resolve())]},
        "output_dir": str(folder / "out"),
        "cache_dir": str(folder / "cache"),
    }
    job.update(settings)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path
