"""Schedules and `narrate serve`: the job's `schedule:` becomes a Prefect deployment schedule,
and a real `prefect server start` runs a served job on its schedule to finished outputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from prefect.client.schemas.schedules import CronSchedule

from pipeline.config import load_job
from pipeline.errors import ConfigError
from pipeline.orchestrate.deployments import (
    NO_SERVER,
    build_deployment,
    load_jobs,
    require_server,
    schedules_for,
)
from pipeline.orchestrate.parameters import with_run_parameters
from tests.jobs import write_job
from tests.prefect_server import (
    BIN,
    TERMINAL_STATES,
    Api,
    prefect_env,
    prefect_server,
    started,
    state_of,
    wait_for,
)

SHORT_BOOK = """# The Harbour Lamp

## The Evening

The keeper climbed the stairs at dusk. He trimmed the wick and lit the lamp.

## The Morning

The ships came home before dawn. The keeper slept until noon.
"""


@pytest.fixture()
def no_server() -> Iterator[None]:
    """Whatever other tests set up (a session harness), this one sees no Prefect server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield


def short_book(folder: Path) -> Path:
    path = folder / "harbour-lamp.md"
    path.write_text(SHORT_BOOK, encoding="utf-8")
    return path


# --- the job's schedule as Prefect schedules --------------------------------------------


def test_cron_schedule_keeps_its_time_zone(tmp_path: Path) -> None:
    job = load_job(write_job(tmp_path, schedule={"cron": "30 2 * * 1-5", "timezone": "Europe/Paris"}))
    [schedule] = schedules_for(job)
    assert schedule.cron == "30 2 * * 1-5"
    assert schedule.timezone == "Europe/Paris"
    assert schedule.interval is None


def test_interval_schedule(tmp_path: Path) -> None:
    job = load_job(write_job(tmp_path, schedule={"interval_s": 3600}))
    [schedule] = schedules_for(job)
    assert schedule.interval == timedelta(hours=1)
    assert schedule.cron is None


def test_job_without_schedule_runs_on_demand_only(tmp_path: Path) -> None:
    assert schedules_for(load_job(write_job(tmp_path))) == []


def test_bad_cron_is_one_line_naming_the_key(tmp_path: Path) -> None:
    job = load_job(write_job(tmp_path, schedule={"cron": "61 * * * *"}))
    with pytest.raises(ConfigError) as err:
        schedules_for(job)
    message = str(err.value)
    assert "schedule.cron" in message and str(job.path) in message and "\n" not in message


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe", "utc"])
def test_unknown_time_zone_names_file_line_and_key(tmp_path: Path, zone: str) -> None:
    path = tmp_path / "j.yaml"
    path.write_text(f"name: j\ninput: {{files: [a.md]}}\nschedule:\n  cron: '0 3 * * *'\n  timezone: {zone}\n")
    with pytest.raises(ConfigError) as err:
        load_job(path)
    assert str(err.value).startswith(f"{path}:5: schedule.timezone:")
    assert zone in str(err.value)


def test_schedule_needs_exactly_one_of_cron_and_interval(tmp_path: Path) -> None:
    path = tmp_path / "j.yaml"
    path.write_text("name: j\ninput: {files: [a.md]}\nschedule: {cron: '0 3 * * *', interval_s: 60}\n")
    with pytest.raises(ConfigError, match="exactly one of 'cron' or 'interval_s'"):
        load_job(path)


# --- deployments -----------------------------------------------------------------------


def test_deployment_carries_job_path_schedule_and_run_parameters(tmp_path: Path) -> None:
    job = load_job(write_job(tmp_path, name="nightly", schedule={"cron": "0 3 * * *", "timezone": "Asia/Tokyo"}))
    dep = build_deployment(job)
    assert dep.name == "nightly"
    assert dep.entrypoint == "pipeline.flows.narrate_flow"  # importable anywhere narrate is installed
    assert dep.parameters == {"job_path": str(job.path)}
    assert Path(dep.parameters["job_path"]).is_absolute()
    [schedule] = dep.schedules or []
    assert isinstance(schedule.schedule, CronSchedule)
    assert schedule.schedule.cron == "0 3 * * *" and schedule.schedule.timezone == "Asia/Tokyo"
    assert dep.concurrency_limit == 1  # ticks of one job never overlap
    # What a run may be given at run time: which files, which chapters; never a key.
    properties = dep._parameter_openapi_schema.properties
    assert {"job_path", "files", "chapters", "fresh", "preview_seconds"} <= set(properties)
    assert not any("key" in name for name in properties)


def test_run_parameters_replace_files_and_chapters(tmp_path: Path) -> None:
    job = load_job(write_job(tmp_path, input={"chapters": [1, 2]}))
    other = short_book(tmp_path)
    # Relative names resolve against the job file, as they do inside it.
    narrowed = with_run_parameters(job, files=[other.name], chapters=["Morning"])
    assert narrowed.input_files() == [other]
    assert narrowed.config.input.chapters == ["Morning"]
    assert narrowed.config.input.read_titles == job.config.input.read_titles  # the rest is the job's
    assert with_run_parameters(job) is job
    assert with_run_parameters(job, chapters=[2]).config.input.files == job.config.input.files


def test_bad_run_parameters_are_one_line(tmp_path: Path) -> None:
    job = load_job(write_job(tmp_path))
    with pytest.raises(ConfigError) as err:
        with_run_parameters(job, files=[])
    assert str(err.value).startswith(f"{job.path}: run parameter files:") and "\n" not in str(err.value)


def test_two_jobs_with_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_job(tmp_path / "a", name="same")
    second = write_job(tmp_path / "b", name="same")
    with pytest.raises(ConfigError, match="also the name of"):
        load_jobs([str(first), str(second)])


def test_serving_without_a_server_says_how_to_start_one(no_server: None) -> None:
    with pytest.raises(ConfigError) as err:
        require_server()
    assert str(err.value) == NO_SERVER and "prefect server start" in NO_SERVER


def test_narrate_serve_without_server_exits_2_with_one_line(
    tmp_path: Path, no_server: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    job = write_job(tmp_path, schedule={"interval_s": 60})
    assert main(["serve", str(job)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"narrate: error: {NO_SERVER}"


def test_narrate_deploy_without_server_exits_2_with_one_line(
    tmp_path: Path, no_server: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    assert main(["deploy", str(write_job(tmp_path)), "--pool", "narrate"]) == 2
    assert capsys.readouterr().err.strip() == f"narrate: error: {NO_SERVER}"


def test_narrate_serve_checks_every_job_file_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    good = write_job(tmp_path, name="good")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninput: {files: [a.md]}\nschedule: {cron: '0 3 * * *', timezone: Nowhere/Land}\n")
    assert main(["serve", str(good), str(bad)]) == 2
    assert capsys.readouterr().err.strip().startswith(f"narrate: error: {bad}:3: schedule.timezone")


# --- a real server, a served job, a scheduled run --------------------------------------


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.mark.slow
def test_served_job_runs_on_its_schedule_with_outputs(tmp_path: Path) -> None:
    manuscript = short_book(tmp_path)
    common: dict[str, Any] = {
        "title": None,  # the book's own title, from the manuscript
        "input": {"files": [str(manuscript)]},
        "audio": {"formats": ["wav"]},
        "outputs": {"subtitles": ["srt"], "alignment": True},
    }
    scheduled = write_job(tmp_path, name="nightly", schedule={"interval_s": 5}, **common)
    on_demand = write_job(tmp_path, name="ondemand", **common)
    home = tmp_path / "prefect"
    home.mkdir()
    with prefect_server(home) as url:
        api = Api(url)
        served_at = datetime.now(UTC)
        argv = [str(BIN / "narrate"), "serve", str(scheduled), str(on_demand)]
        log = tmp_path / "serve.log"
        with started(argv, prefect_env(home, url), log):

            def deployments() -> tuple[dict[str, Any], dict[str, Any]] | None:
                try:
                    return api.deployment("narrate/nightly"), api.deployment("narrate/ondemand")
                except Exception:
                    return None

            nightly, _ = wait_for(deployments, timeout=90, what="narrate serve to register both jobs")
            # A run-time parameter through the deployment: only the second chapter.
            manual = api.run_deployment("narrate/ondemand", {"chapters": [2]})

            def first_scheduled_run() -> dict[str, Any] | None:
                runs = [r for r in api.flow_runs(nightly["id"]) if r["auto_scheduled"]]
                return next((r for r in runs if state_of(r) in TERMINAL_STATES), None)

            run = wait_for(first_scheduled_run, timeout=120, what="a scheduled run to finish", interval=1)
            done = wait_for(lambda: api.finished(manual), timeout=60, what="the on-demand run to finish")
        serve_log = log.read_text(errors="replace")
        assert state_of(run) == "COMPLETED", (run["state"], serve_log[-3000:])
        assert state_of(done) == "COMPLETED", (done["state"], serve_log[-3000:])
        # Due within seconds of serving, as the schedule said (not a run someone started).
        assert _parse_time(run["expected_start_time"]) - served_at < timedelta(seconds=30)
        artifacts = api.artifacts(run["id"])

    out = tmp_path / "out" / "nightly"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["chunks_failed"] == 0 and report["chunks_total"] > 0
    assert [c["written"] for c in report["book"]["chapters"]] == [True, True]
    book = out / "the-harbour-lamp.wav"
    info = sf.info(str(book))
    [measured] = [a for a in report["outputs"]["audio"] if a["path"] == book.name]
    assert info.duration > 3 and abs(info.duration - measured["duration_s"]) < 0.05
    assert (out / "the-harbour-lamp.srt").read_text(encoding="utf-8").count("-->") >= 2
    summary = next(a for a in artifacts if a["key"] == "narrate-nightly-summary")
    assert "The Evening" in summary["data"] and "The Morning" in summary["data"]

    ondemand_report = json.loads((tmp_path / "out" / "ondemand" / "report.json").read_text(encoding="utf-8"))
    assert [c["title"] for c in ondemand_report["book"]["chapters"]] == ["The Morning"]
