"""``narrate deploy JOB.yaml... --pool NAME``: register jobs on a work pool for workers to run.

Start workers anywhere that has narrate installed, the job files at the same paths, and the
API key in the environment: ``prefect worker start --pool NAME --type process``. Each worker
runs flow runs in child processes; runs of different jobs spread over the workers, and they
share one API account's limits through the Prefect server (see shared_limits).
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import ConfigError
from pipeline.orchestrate.deployments import FLOW_NAME, build_deployment, load_jobs, require_server

POOL_TYPE = "process"


def ensure_process_pool(name: str) -> bool:
    """Create a process work pool named ``name`` unless it exists; True if it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            client.create_work_pool(WorkPoolCreate(name=name, type=POOL_TYPE, base_job_template=template))
            return True
    if pool.type != POOL_TYPE:
        raise ConfigError(f"work pool {name!r} is of type {pool.type!r}; narrate deploy needs a {POOL_TYPE!r} pool")
    return False


def deploy_jobs(job_paths: Sequence[str], *, pool: str, create_pool: bool = True) -> list[str]:
    """Register (or update) one deployment per job on ``pool``; returns their names."""
    from prefect import deploy

    jobs = load_jobs(job_paths)
    require_server()
    if create_pool:
        ensure_process_pool(pool)
    deployments = [build_deployment(job, work_pool=pool) for job in jobs]
    try:
        deploy(*deployments, work_pool_name=pool, build=False, push=False, print_next_steps_message=False)
    except ValueError as exc:  # Prefect's own one-line reasons (no such pool, ...)
        raise ConfigError(f"narrate deploy: {exc}") from None
    return [f"{FLOW_NAME}/{job.config.name}" for job in jobs]
