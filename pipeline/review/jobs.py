"""Background fixes: one at a time, in the order asked, each with a progress record the page
polls (``GET /api/jobs/{id}``). The server's event loop never waits for one: synthesis is
asyncio, and the CPU-heavy rendering runs in a thread inside ``rebuild``'s caller."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import NarrateError
from pipeline.review.rebuild import RebuildOutcome, Step

Work = Callable[[Step], Awaitable[RebuildOutcome]]


@dataclass
class FixJob:
    id: int
    kind: str
    target: str
    state: str = "queued"  # queued | running | done | failed
    step: str = ""
    done: int = 0
    total: int = 0
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "state": self.state,
            "step": self.step,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "result": self.result,
        }


class FixQueue:
    def __init__(self, on_done: Callable[[], Awaitable[None]]) -> None:
        self.jobs: dict[int, FixJob] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()  # one rebuild at a time: they write the same files
        self._on_done = on_done
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, kind: str, target: str, work: Work) -> FixJob:
        job = FixJob(next(self._ids), kind, target)
        self.jobs[job.id] = job
        task = asyncio.get_running_loop().create_task(self._run(job, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: FixJob, work: Work) -> None:
        async with self._lock:
            job.state = "running"

            def step(what: str, done: int, total: int) -> None:
                job.step, job.done, job.total = what, done, total

            try:
                outcome = await work(step)
            except NarrateError as exc:
                job.state, job.error = "failed", str(exc)
            except Exception as exc:  # a bug: the page says so in one line, the server lives on
                job.state, job.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
            else:
                job.state = "done"
                job.result = {
                    "resynthesized": outcome.resynthesized,
                    "chapters_rebuilt": outcome.chapters_rebuilt,
                    "attempt_kept": outcome.attempt_kept,
                }
            finally:
                await self._on_done()

    def busy(self) -> bool:
        return any(j.state in {"queued", "running"} for j in self.jobs.values())
