"""Watch mode (``input.watch: true``): a scheduled job that narrates what arrived since its last run.

Each file matching ``input.files`` is its own book, written to ``<output_dir>/<file stem>/``.
The output folder keeps ``.narrate-watch.json``: for every manuscript finished so far, the
SHA-256 of the content that was narrated. A run takes the files that are not there (added
since) or whose content changed, one after the other; a file that fails stays pending and is
tried again next run, and the chunk cache makes that retry pay only for what is missing.
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Job
from pipeline.errors import ConfigError, FatalEngineError, NarrateError
from pipeline.fsutil import output_lock, write_json_atomic

if TYPE_CHECKING:
    from prefect.states import State

STATE_FILE = ".narrate-watch.json"
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Manuscript:
    path: Path
    name: str  # as shown and recorded: relative to the job file when inside its folder
    sha256: str
    slug: str  # its output subfolder


@dataclass(slots=True)
class WatchResult:
    done: list[tuple[Manuscript, dict[str, Any]]] = field(default_factory=list)  # with its report
    failed: list[tuple[Manuscript, str]] = field(default_factory=list)  # with the one-line reason
    skipped: list[str] = field(default_factory=list)  # finished by an earlier run

    def summary(self) -> str:
        parts = [f"{len(self.done)} narrated", f"{len(self.skipped)} already done"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({'; '.join(reason for _, reason in self.failed)})")
        return ", ".join(parts)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _display(job: Job, path: Path) -> str:
    try:
        return str(path.relative_to(job.base))
    except ValueError:
        return str(path)


def watched_files(job: Job) -> list[Path]:
    """Every file matching ``input.files`` now, in order. Unlike a normal run, a pattern that
    matches nothing is fine (an empty inbox); a folder that does not exist is not."""
    found: list[Path] = []
    for i, pattern in enumerate(job.config.input.files):
        full = job.resolve(pattern)
        folder = _fixed_prefix(full) if glob.has_magic(pattern) else full.parent
        if not folder.is_dir():
            raise ConfigError(f"{job.path}: input.files[{i}]: folder not found: {folder}")
        matches = sorted(Path(m) for m in glob.glob(str(full), recursive=True))
        for m in matches:
            if m.is_file() and m not in found:
                found.append(m)
    return found


def _fixed_prefix(pattern: Path) -> Path:
    """The folder part of a glob before its first wildcard: the folder being watched."""
    parts: list[str] = []
    for part in pattern.parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _slugs(paths: list[Path]) -> dict[Path, str]:
    from pipeline.render import slugify

    by_stem = {p: slugify(p.stem) for p in paths}
    taken = list(by_stem.values())
    # Two files with one stem (book.md, book.epub) keep their extension to stay apart.
    return {p: s if taken.count(s) == 1 else slugify(p.name) for p, s in by_stem.items()}


class WatchState:
    """What earlier runs finished, kept in the job's output folder."""

    def __init__(self, path: Path, finished: dict[str, dict[str, Any]]) -> None:
        self.path = path
        self.finished = finished

    @classmethod
    def load(cls, output_dir: Path) -> WatchState:
        path = output_dir / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path, {})
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: unreadable watch state ({exc}); delete it to start over") from None
        finished = data.get("finished") if isinstance(data, dict) else None
        if not isinstance(finished, dict):
            raise ConfigError(f"{path}: not a narrate watch state; delete it to start over")
        return cls(path, finished)

    def is_done(self, m: Manuscript) -> bool:
        entry = self.finished.get(m.name)
        return isinstance(entry, dict) and entry.get("sha256") == m.sha256

    def mark_done(self, m: Manuscript, report: dict[str, Any]) -> None:
        self.finished[m.name] = {
            "sha256": m.sha256,
            "output": m.slug,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "audio_seconds": report.get("audio_seconds"),
        }
        write_json_atomic(self.path, {"version": STATE_VERSION, "finished": self.finished})


def scan(job: Job, state: WatchState) -> tuple[list[Manuscript], list[str]]:
    """(manuscripts to narrate, names of those already done)."""
    paths = watched_files(job)
    slugs = _slugs(paths)
    pending: list[Manuscript] = []
    skipped: list[str] = []
    for p in paths:
        m = Manuscript(p, _display(job, p), _sha256(p), slugs[p])
        if state.is_done(m):
            skipped.append(m.name)
        else:
            pending.append(m)
    return pending, skipped


def job_for(job: Job, m: Manuscript) -> Job:
    """The job narrowed to one manuscript, writing into its own subfolder. The job's title
    describes no particular book in watch mode, so each book's title comes from its file."""
    new_input = job.config.input.model_copy(update={"files": [str(m.path)], "watch": False})
    cfg = job.config.model_copy(update={"input": new_input, "output_dir": str(job.output_dir / m.slug), "title": None})
    return Job(cfg, job.path)


async def run_watch(
    job: Job, run_one: Callable[[Job], Awaitable[dict[str, Any]]], *, record: bool = True
) -> WatchResult:
    """Narrate every pending manuscript with ``run_one`` (the flow's per-book run). With
    ``record`` false (a preview, a chapter subset) nothing is marked done."""
    result = WatchResult()
    # One watch run per job at a time: the state file is read, then written per book.
    with output_lock(job.output_dir):
        state = WatchState.load(job.output_dir)
        pending, result.skipped = scan(job, state)
        for m in pending:
            try:
                report = await run_one(job_for(job, m))
            except NarrateError as exc:
                result.failed.append((m, f"{m.name}: {exc}"))
                if isinstance(exc, FatalEngineError):
                    break  # no key, no quota...: every other book would fail the same way
                continue
            if report.get("chunks_failed"):
                result.failed.append((m, f"{m.name}: {report['chunks_failed']} chunk(s) failed"))
                continue
            if record:
                state.mark_done(m, report)
            result.done.append((m, report))
    return result


async def run_watch_flow(
    job: Job, run_one: Callable[[Job], Awaitable[dict[str, Any]]], *, record: bool = True
) -> State:
    """Watch mode as the flow's end state, with an artifact per book and one for the run."""
    from prefect.states import Completed, Failed

    from pipeline.orchestrate.artifacts import publish_report, publish_watch_summary

    result = await run_watch(job, run_one, record=record)
    for m, report in result.done:
        await publish_report(report, job.output_dir / m.slug, name=f"{job.config.name}-{m.slug}")
    lines = [f"narrated {m.name} -> {m.slug}/" for m, _ in result.done]
    lines += [f"failed {reason}" for _, reason in result.failed]
    lines += [f"already done {name}" for name in result.skipped]
    await publish_watch_summary(job.config.name, lines or ["no manuscripts match input.files yet"])
    data = {"narrated": [m.name for m, _ in result.done], "failed": [m.name for m, _ in result.failed]}
    if result.failed:
        return Failed(message=result.summary(), data=data)
    return Completed(message=result.summary(), data=data)
