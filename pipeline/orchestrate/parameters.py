"""Run-time parameters of a deployment run: which files, which chapters, instead of the job's.

They reach the flow as Prefect parameters (set in the UI, ``prefect deployment run --param``,
or a schedule), so they are checked here with the job file's own rules and fail in one line.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from pipeline.config import InputConfig, Job
from pipeline.errors import ConfigError


def with_run_parameters(job: Job, *, files: list[str] | None = None, chapters: list[int | str] | None = None) -> Job:
    """The job with ``input.files`` / ``input.chapters`` replaced by whichever are given.
    Relative files resolve against the job file, as in the job file itself."""
    changes: dict[str, Any] = {}
    if files is not None:
        changes["files"] = files
    if chapters is not None:
        changes["chapters"] = chapters
    if not changes:
        return job
    merged = job.config.input.model_dump() | changes
    try:
        new_input = InputConfig.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{job.path}: run parameter {where}: {err['msg']}") from None
    return Job(job.config.model_copy(update={"input": new_input}), job.path)
