"""Jobs as Prefect deployments, for ``narrate serve`` (schedules run here) and ``narrate deploy``
(runs go to a work pool and its workers).

A deployment is the ``narrate`` flow with one default parameter, the job file's absolute path,
named after the job (``narrate/<job name>``), carrying the job's schedule. The flow is referred
to by module path (``pipeline.flows.narrate_flow``), so any machine with narrate installed can
run it without copying code; the job file and its manuscripts must be at the same path there
(a shared folder). Runs of one job never overlap: a schedule tick that arrives while the
previous run still writes waits for it (deployment concurrency limit 1, enqueue).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from pipeline.config import Job, load_job
from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

FLOW_NAME = "narrate"
NO_SERVER = (
    "schedules and workers need a Prefect server: start one with `prefect server start`, then "
    "`export PREFECT_API_URL=http://127.0.0.1:4200/api`"
)


def require_server() -> str:
    """The configured Prefect API URL; a one-line error when there is none or it is down."""
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise ConfigError(NO_SERVER)
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10)
    except httpx.HTTPError as exc:
        raise ConfigError(f"no Prefect server answers at PREFECT_API_URL={url} ({type(exc).__name__})") from None
    return url


def load_jobs(paths: Sequence[str]) -> list[Job]:
    """Every job file, validated; two jobs with one name would be one deployment."""
    jobs = [load_job(p) for p in paths]
    seen: dict[str, Job] = {}
    for job in jobs:
        other = seen.setdefault(job.config.name, job)
        if other is not job:
            raise ConfigError(f"{job.path}: name {job.config.name!r} is also the name of {other.path}")
    return jobs


def schedules_for(job: Job) -> list[Any]:
    """The job's ``schedule:`` as Prefect schedules (none: runs only when asked)."""
    from prefect.schedules import Cron, Interval

    sched = job.config.schedule
    if sched is None:
        return []
    if sched.cron is not None:
        try:
            return [Cron(sched.cron, timezone=sched.timezone)]
        except ValueError as exc:
            raise ConfigError(f"{job.path}: schedule.cron: {exc}") from None
    assert sched.interval_s is not None  # the config allows exactly one of the two
    return [Interval(timedelta(seconds=sched.interval_s), timezone=sched.timezone)]


def describe_schedule(job: Job) -> str:
    sched = job.config.schedule
    if sched is None:
        return "no schedule (run on demand)"
    if sched.cron is not None:
        return f"cron '{sched.cron}' ({sched.timezone})"
    return f"every {sched.interval_s:g} s"


def build_deployment(job: Job, *, work_pool: str | None = None) -> RunnerDeployment:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.types.entrypoint import EntrypointType

    from pipeline.flows import narrate_flow

    cfg = job.config
    # to_deployment returns a coroutine inside an event loop; callers here are synchronous.
    deployment = narrate_flow.to_deployment(
        name=cfg.name,
        schedules=schedules_for(job),
        parameters={"job_path": str(job.path)},
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        description=f"{cfg.title or cfg.name}: {job.path} ({describe_schedule(job)})",
        tags=["narrate"],
        work_pool_name=work_pool,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return cast("RunnerDeployment", deployment)
