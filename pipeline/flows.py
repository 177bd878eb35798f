"""Prefect wiring: one async flow per job, a few stage tasks. No logic lives here.

Why so few tasks: the embedded Prefect server records about 90 task runs a second, so a task
per chunk would make Prefect the bottleneck. Chunk-level fan-out is plain asyncio inside the
synthesis task; chunk-level resume comes from our own content-addressed cache (Prefect's cache
keys on the flow run and would not resume across runs). Flow parameters are the job path and
run options only, never the API key, which is read from the environment by the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State

from pipeline.config import load_job
from pipeline.errors import NarrateError
from pipeline.orchestrate.artifacts import publish_failure, publish_report
from pipeline.orchestrate.parameters import with_run_parameters
from pipeline.orchestrate.watch import run_watch_flow
from pipeline.runner import RunOptions, Stages, prepare_stage, render_stage, synthesize_stage
from pipeline.runner import run_job as run_stages

__all__ = ["RunOptions", "narrate_flow", "run_job"]

prepare_task = task(name="prepare-text", cache_policy=NO_CACHE, persist_result=False)(prepare_stage)
synthesize_task = task(name="synthesize", cache_policy=NO_CACHE, persist_result=False)(synthesize_stage)
render_task = task(name="render", cache_policy=NO_CACHE, persist_result=False)(render_stage)
TASK_STAGES = Stages(prepare=prepare_task, synthesize=synthesize_task, render=render_task)


async def run_job(job: Any, options: RunOptions) -> dict[str, Any]:
    """The job with every stage recorded as a Prefect task run."""
    return await run_stages(job, options, TASK_STAGES)


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
