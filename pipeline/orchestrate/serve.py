"""``narrate serve JOB.yaml...``: this process runs each job's schedule until stopped.

Prefect's runner polls the server for the deployments' scheduled runs and starts each one in
a child process (which inherits this environment, the API key included: the key never becomes
a Prefect parameter). Stopping the server pauses the schedules, so nothing piles up meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.orchestrate.deployments import FLOW_NAME, build_deployment, describe_schedule, load_jobs, require_server


def serve_jobs(job_paths: Sequence[str], *, limit: int | None = None) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM). ``limit`` caps runs at once, all jobs together."""
    from prefect import serve

    jobs = load_jobs(job_paths)  # every job file is checked before anything is registered
    deployments = [build_deployment(job) for job in jobs]
    url = require_server()
    print(f"serving {len(jobs)} job(s) with the Prefect server at {url}; Ctrl-C to stop", flush=True)
    for job in jobs:
        name = f"{FLOW_NAME}/{job.config.name}"
        print(f"  {name}: {describe_schedule(job)}; run now: prefect deployment run '{name}'", flush=True)
    serve(*deployments, limit=limit, print_starting_message=False)
