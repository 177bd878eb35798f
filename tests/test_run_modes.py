"""`narrate run` with and without a Prefect server: without one it runs the stages directly
(Prefect is never imported); with PREFECT_API_URL set the run is a flow the UI shows, with its
stage tasks and summary artifact."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.orchestrate.shared_limits import prefect_server_configured
from tests.jobs import write_job

BOOK = "# One\n\nThe lamp was lit at dusk.\n\n# Two\n\nIt burned until the morning came.\n"


def _job(tmp_path: Path, name: str) -> Path:
    manuscript = tmp_path / f"{name}.md"
    manuscript.write_text(BOOK, encoding="utf-8")
    return write_job(tmp_path, name=name, input={"files": [str(manuscript)]})


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), DO_NOT_TRACK="1", PREFECT_LOGGING_LEVEL="WARNING", **extra)
    return env


def test_server_configured_by_environment_or_active_profile(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert not prefect_server_configured({"PREFECT_HOME": str(home)})  # shipped default: ephemeral
    assert prefect_server_configured({"PREFECT_HOME": str(home), "PREFECT_API_URL": "http://h:4200/api"})
    (home / "profiles.toml").write_text('active = "local"\n', encoding="utf-8")
    assert prefect_server_configured({"PREFECT_HOME": str(home)})  # the shipped 'local' has a URL
    assert not prefect_server_configured({"PREFECT_HOME": str(home), "PREFECT_PROFILE": "ephemeral"})
    (home / "profiles.toml").write_text(
        'active = "mine"\n[profiles.mine]\nPREFECT_API_URL = "http://10.0.0.2:4200/api"\n', encoding="utf-8"
    )
    assert prefect_server_configured({"PREFECT_HOME": str(home)})
    (home / "profiles.toml").write_text("not toml [", encoding="utf-8")
    assert not prefect_server_configured({"PREFECT_HOME": str(home)})


def test_a_run_without_a_server_never_imports_prefect(tmp_path: Path) -> None:
    job = _job(tmp_path, "plain")
    code = (
        "import sys\nfrom pipeline.cli import main\n"
        f"rc = main(['run', {str(job)!r}, '--quiet'])\n"
        "print('prefect imported' if any(m.split('.')[0] == 'prefect' for m in sys.modules) else 'no prefect')\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_env(tmp_path / "prefect-home"), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "no prefect"
    report = json.loads((tmp_path / "out" / "plain" / "report.json").read_text(encoding="utf-8"))
    assert report["chunks_failed"] == 0 and report["book"]["chapters"][1]["written"]


async def _recorded(job_path: str) -> tuple[Any, list[str], list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
    )

    async with get_client() as client:
        runs = [r for r in await client.read_flow_runs() if r.parameters.get("job_path") == job_path]
        assert len(runs) == 1, runs
        [run] = runs
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
    return run, sorted(t.name.rsplit("-", 1)[0] for t in tasks), [str(a.key) for a in artifacts]


@pytest.mark.slow
def test_a_run_with_a_configured_server_shows_in_the_ui(tmp_path: Path, prefect_harness: None) -> None:
    from prefect.settings import PREFECT_API_URL

    job = _job(tmp_path, "recorded")
    env = _env(tmp_path / "prefect-home", PREFECT_API_URL=str(PREFECT_API_URL.value()))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(job), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    run, tasks, artifacts = asyncio.run(_recorded(str(job)))
    assert run.state_type.value == "COMPLETED"
    assert tasks == ["prepare-text", "render", "synthesize"]
    assert "narrate-recorded-summary" in artifacts
