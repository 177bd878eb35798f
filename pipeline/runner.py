"""One job, stage by stage, without Prefect: what a flow run does, minus the recording.

``run_job`` takes its three stages as plain callables: :mod:`pipeline.flows` passes them wrapped
in Prefect tasks (so a configured server records every stage), and ``narrate run`` with no
server configured passes them bare. Starting Prefect's temporary
embedded server costs a one-off run about ten seconds and records runs nobody can look at
afterwards (the server and its database go away with the process), so a run without a server
skips Prefect entirely; results are the same files either way.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pipeline.cache import ChunkCache
from pipeline.config import Job
from pipeline.errors import FatalEngineError, NarrateError
from pipeline.fsutil import output_lock, write_json_atomic
from pipeline.prepare import PreparedBook, prepare_book
from pipeline.progress import ProgressPrinter
from pipeline.render import Renderer, RenderResult
from pipeline.report import build_report
from pipeline.synthesis import SynthesisResult, synthesize_all


@dataclass(frozen=True, slots=True)
class RunOptions:
    fresh: bool = False
    preview_seconds: float | None = None
    quiet: bool = False


# A user's error (NarrateError) is returned from a stage, not raised: raised inside a Prefect
# task it would make Prefect log a full traceback, and the user should see one line. run_job
# raises it.

T = TypeVar("T")


def _unwrap(value: T | NarrateError) -> T:
    if isinstance(value, NarrateError):
        raise value
    return value


def prepare_stage(job: Job, preview_seconds: float | None) -> PreparedBook | NarrateError:
    try:
        book = prepare_book(job)
    except NarrateError as exc:
        return exc
    if preview_seconds:
        from pipeline.preview import preview_book

        book = preview_book(book, seconds=preview_seconds)
    return book


async def synthesize_stage(job: Job, book: PreparedBook, options: RunOptions) -> tuple[SynthesisResult, dict[str, Any]]:
    from pipeline.orchestrate.shared_limits import shared_gate_for
    from pipeline.tts.factory import make_engine, needs_timings, worker_count

    try:
        engine = make_engine(
            job.config, request_gate=await shared_gate_for(job.config), chunks=len(book.chunks)
        )
    except NarrateError as exc:
        return SynthesisResult(fatal=exc if isinstance(exc, FatalEngineError) else FatalEngineError(str(exc))), {}
    try:
        try:
            await engine.check()
        except NarrateError as exc:  # also an unreachable server, once its retries are spent
            return SynthesisResult(fatal=exc), {}
        result = await synthesize_all(
            book.chunks,
            engine=engine,
            cache=ChunkCache(job.cache_dir),
            need_timings=needs_timings(job.config),
            workers=worker_count(job.config),
            fresh=options.fresh,
            progress=None if options.quiet else ProgressPrinter(),
        )
        stats = getattr(engine, "stats", None)
        return result, (stats.as_dict() if stats is not None else {})
    finally:
        await engine.aclose()


def render_stage(
    job: Job, book: PreparedBook, synthesis: SynthesisResult, output_dir: Path
) -> RenderResult | NarrateError:
    try:
        from pipeline.publish.stage import publish_outputs

        result = Renderer(job.config, book, ChunkCache(job.cache_dir), output_dir).render(synthesis.chunks)
        return publish_outputs(job, book, result, output_dir)
    except NarrateError as exc:
        return exc


@dataclass(frozen=True, slots=True)
class Stages:
    """The three stages a run calls; flows.py substitutes Prefect tasks with the same signatures."""

    prepare: Callable[[Job, float | None], PreparedBook | NarrateError] = prepare_stage
    synthesize: Callable[[Job, PreparedBook, RunOptions], Awaitable[tuple[SynthesisResult, dict[str, Any]]]] = (
        synthesize_stage
    )
    render: Callable[[Job, PreparedBook, SynthesisResult, Path], RenderResult | NarrateError] = render_stage


async def run_job(job: Job, options: RunOptions, stages: Stages = Stages()) -> dict[str, Any]:
    """The job, stage by stage. Raises NarrateError for anything a user can fix."""
    started = time.monotonic()
    output_dir = job.output_dir / "preview" if options.preview_seconds else job.output_dir
    with output_lock(output_dir):
        book = _unwrap(stages.prepare(job, options.preview_seconds))
        synthesis, engine_stats = await stages.synthesize(job, book, options)
        if synthesis.fatal is not None and not synthesis.chunks:
            raise synthesis.fatal
        render = _unwrap(stages.render(job, book, synthesis, output_dir))
        report = build_report(
            job,
            book,
            synthesis,
            render,
            engine_stats=engine_stats,
            output_dir=output_dir,
            wall_seconds=time.monotonic() - started,
        )
        write_json_atomic(output_dir / "report.json", report)
    if synthesis.fatal is not None:
        raise synthesis.fatal
    return report


def reuse_prepared(book: PreparedBook) -> Callable[[Job, float | None], PreparedBook | NarrateError]:
    """A prepare stage that hands back ``book``, already read by the caller (``narrate run``
    reads the manuscripts first to fail early and to estimate); only the preview cut is left."""

    def prepare(job: Job, preview_seconds: float | None) -> PreparedBook | NarrateError:
        if preview_seconds:
            from pipeline.preview import preview_book

            return preview_book(book, seconds=preview_seconds)
        return book

    return prepare
