"""Prefect wiring: one async flow per job, a few stage tasks. No logic lives here.

Why so few tasks: the embedded Prefect server records about 90 task runs a second, so a task
per chunk would make Prefect the bottleneck. Chunk-level fan-out is plain asyncio inside the
synthesis task; chunk-level resume comes from our own content-addressed cache (Prefect's cache
keys on the flow run and would not resume across runs). Flow parameters are the job path and
run options only, never the API key, which is read from the environment by the engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State

from pipeline.cache import ChunkCache
from pipeline.config import Job, load_job
from pipeline.errors import FatalEngineError, NarrateError
from pipeline.fsutil import output_lock, write_json_atomic
from pipeline.orchestrate.artifacts import publish_failure, publish_report
from pipeline.orchestrate.parameters import with_run_parameters
from pipeline.orchestrate.shared_limits import shared_gate_for
from pipeline.orchestrate.watch import run_watch_flow
from pipeline.prepare import PreparedBook, prepare_book
from pipeline.progress import ProgressPrinter
from pipeline.render import Renderer, RenderResult
from pipeline.report import build_report
from pipeline.synthesis import SynthesisResult, synthesize_all
from pipeline.tts.factory import make_engine, needs_timings, worker_count


@dataclass(frozen=True, slots=True)
class RunOptions:
    fresh: bool = False
    preview_seconds: float | None = None
    quiet: bool = False


# A user's error (NarrateError) is returned from a task, not raised: a raised exception would
# make Prefect log a full traceback, and the user should see one line. run_job raises it.


T = TypeVar("T")


def _unwrap(value: T | NarrateError) -> T:
    if isinstance(value, NarrateError):
        raise value
    return value


@task(name="prepare-text", cache_policy=NO_CACHE, persist_result=False)
def prepare_task(job: Job, preview_seconds: float | None) -> PreparedBook | NarrateError:
    try:
        book = prepare_book(job)
    except NarrateError as exc:
        return exc
    if preview_seconds:
        from pipeline.preview import preview_book

        book = preview_book(book, seconds=preview_seconds)
    return book


@task(name="synthesize", cache_policy=NO_CACHE, persist_result=False)
async def synthesize_task(job: Job, book: PreparedBook, options: RunOptions) -> tuple[SynthesisResult, dict[str, Any]]:
    try:
        engine = make_engine(job.config, request_gate=await shared_gate_for(job.config))
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


@task(name="render", cache_policy=NO_CACHE, persist_result=False)
def render_task(
    job: Job, book: PreparedBook, synthesis: SynthesisResult, output_dir: Path
) -> RenderResult | NarrateError:
    try:
        return Renderer(job.config, book, ChunkCache(job.cache_dir), output_dir).render(synthesis.chunks)
    except NarrateError as exc:
        return exc


async def run_job(job: Job, options: RunOptions) -> dict[str, Any]:
    """The job, stage by stage. Raises NarrateError for anything a user can fix."""
    started = time.monotonic()
    output_dir = job.output_dir / "preview" if options.preview_seconds else job.output_dir
    with output_lock(output_dir):
        book = _unwrap(prepare_task(job, options.preview_seconds))
        synthesis, engine_stats = await synthesize_task(job, book, options)
        if synthesis.fatal is not None and not synthesis.chunks:
            raise synthesis.fatal
        render = _unwrap(render_task(job, book, synthesis, output_dir))
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


@flow(name="narrate", persist_result=False, log_prints=False)
async def narrate_flow(
    job_path: str,
    fresh: bool = False,
    preview_seconds: float | None = None,
    files: list[str] | None = None,
    chapters: list[int | str] | None = None,
    quiet: bool = False,
) -> State:
    """Run one job file. Ends Failed (with the one-line reason) when the job did not finish
    every chunk, so schedules and the UI show the truth. ``files`` and ``chapters`` replace the
    job's input.files / input.chapters for this run (deployment parameters); ``quiet`` turns
    the progress display off (``narrate run --quiet``)."""
    options = RunOptions(fresh=fresh, preview_seconds=preview_seconds, quiet=quiet)
    try:
        job = with_run_parameters(load_job(job_path), files=files, chapters=chapters)
        if job.config.input.watch:
            record = preview_seconds is None and chapters is None  # a partial run finishes no book
            return await run_watch_flow(job, lambda one: run_job(one, options), record=record)
        report = await run_job(job, options)
    except NarrateError as exc:
        await publish_failure(Path(job_path).stem, str(exc))
        return Failed(message=str(exc))
    await publish_report(report, Path(report["report_file"]).parent)
    if report["chunks_failed"]:
        return Failed(message=f"{report['chunks_failed']} chunk(s) failed; see {report['report_file']}", data=report)
    return Completed(message="done", data=report)
