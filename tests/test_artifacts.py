"""Prefect artifacts: the run summary is report.json in markdown, and a real run leaves it, with
links to files that exist, in the Prefect API."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.orchestrate.artifacts import artifact_key, failure_markdown, summary_markdown
from tests.jobs import write_job

BOOK = """# Lamps & Ledgers

## The Keeper | Her Ledger

She wrote down the wind. She wrote down the ships.

## Morning

The lamp went out at dawn.
"""


def _report(**changes: Any) -> dict[str, Any]:
    """The shape build_report writes (see pipeline/report.py), with two chapters and a book."""
    audio = [
        {"path": "chapters/01-one.wav", "duration_s": 61.5, "integrated_lufs": -19.42, "rms_db": -20.0,
         "true_peak_db": -3.1, "meets_profile": True, "problems": []},
        {"path": "book.wav", "duration_s": 3725.0, "integrated_lufs": -19.41, "rms_db": -20.0,
         "true_peak_db": -2.5, "meets_profile": False, "problems": ["true peak -2.5 dBTP above -3.0"]},
    ]  # fmt: skip
    report: dict[str, Any] = {
        "job": "nightly",
        "finished_at": "2026-11-21T02:23:25+00:00",
        "host": "vm",
        "engine": {"kind": "asyncflow"},
        "book": {
            "title": "Lamps & Ledgers",
            "chapters": [
                {"index": 1, "title": "The Keeper | Her Ledger", "chunks": 15, "written": True},
                {"index": 2, "title": "Morning", "chunks": 3, "written": False},
            ],
        },
        "chunks_total": 18,
        "chunks_synthesized": 12,
        "chunks_from_cache": 5,
        "chunks_failed": 1,
        "requests": {"requests": 14, "retries": 2, "rate_limited": {"RATE_LIMIT_EXCEEDED": 1}, "server_errors": 1},
        "cost_usd": 0.0823,
        "audio_seconds": 3725.0,
        "wall_seconds": 75.845,
        "outputs": {"audio": audio, "subtitles": ["book.srt"], "other": ["alignment.json"]},
    }
    report.update(changes)
    return report


def _table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The body rows of the table under ``## heading``, split on unescaped pipes."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_summary_holds_totals_chapters_and_loudness_per_file(tmp_path: Path) -> None:
    md = summary_markdown(_report(), tmp_path)
    assert md.startswith("# Lamps & Ledgers\n")
    assert "**incomplete: 1 chunk(s) failed**" in md
    assert "| Chunks | 18 (12 synthesized, 5 from cache, 1 failed) |" in md
    assert "| Requests | 14 (2 retries, 1 rate-limited, 1 server errors) |" in md
    assert "| Duration | 1 h 02 min 05 s |" in md and "| Cost | $0.08 |" in md
    chapters = _table_rows(md, "Chapters")
    assert chapters == [["1", "The Keeper | Her Ledger", "15", "yes"], ["2", "Morning", "3", "no"]]
    loudness = _table_rows(md, "Loudness per file")
    assert [row[0] for row in loudness] == ["chapters/01-one.wav", "book.wav"]
    assert [row[2:5] for row in loudness] == [["-19.4", "-20.0", "-3.1"], ["-19.4", "-20.0", "-2.5"]]
    assert loudness[1][5] == "no: true peak -2.5 dBTP above -3.0"


def test_summary_links_every_output(tmp_path: Path) -> None:
    md = summary_markdown(_report(), tmp_path)
    targets = [Path(unquote(urlparse(u).path)) for u in re.findall(r"\]\((file://[^)]+)\)", md)]
    expected = {tmp_path, *(tmp_path / p for p in ("chapters/01-one.wav", "book.wav", "book.srt", "alignment.json"))}
    assert expected | {tmp_path / "report.json"} == set(targets)


def test_local_engine_has_no_requests(tmp_path: Path) -> None:
    md = summary_markdown(_report(engine={"kind": "local"}, requests={}, chunks_failed=0), tmp_path)
    assert "| Requests | none (the local engine speaks offline) |" in md
    assert "finished" in md and "incomplete" not in md


def test_failure_summary_is_the_one_line_reason() -> None:
    md = failure_markdown("nightly", "jobs/nightly.yaml:3: unknown key 'engin'")
    assert md == "# narrate: job `nightly` did not run\n\njobs/nightly.yaml:3: unknown key 'engin'\n"


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", fullmatch=True), st.sampled_from(["summary", "outputs"]))
def test_artifact_keys_are_what_prefect_accepts(job_name: str, kind: str) -> None:
    key = artifact_key(job_name, kind)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", key), key
    assert key.startswith("narrate-") and key.endswith(kind)


# --- a real run --------------------------------------------------------------------------


async def _artifacts(flow_run_id: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


@pytest.mark.slow
def test_a_run_publishes_its_summary_and_links(tmp_path: Path, prefect_harness: None) -> None:
    from pipeline.flows import narrate_flow

    manuscript = tmp_path / "lamps.md"
    manuscript.write_text(BOOK, encoding="utf-8")
    job = write_job(tmp_path, name="lamps", title=None, input={"files": [str(manuscript)]})
    state: Any = asyncio.run(narrate_flow(job_path=str(job), quiet=True, return_state=True))  # type: ignore[arg-type]
    assert state.is_completed(), state.message
    out = tmp_path / "out" / "lamps"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    artifacts = asyncio.run(_artifacts(state.state_details.flow_run_id))
    [summary] = [a for a in artifacts if a.key == "narrate-lamps-summary"]
    assert summary.type == "markdown"
    rows = _table_rows(summary.data, "Loudness per file")
    measured = {a["path"]: f"{a['integrated_lufs']:.1f}" for a in report["outputs"]["audio"]}
    assert {row[0]: row[2] for row in rows} == measured
    assert "The Keeper | Her Ledger" in [row[1] for row in _table_rows(summary.data, "Chapters")]
    links = [Path(unquote(urlparse(u).path)) for a in artifacts for u in re.findall(r"file://[^)\s]+", str(a.data))]
    assert out in links and all(p.exists() for p in links), links


@pytest.mark.slow
def test_a_run_that_cannot_start_publishes_why(tmp_path: Path, prefect_harness: None) -> None:
    from pipeline.flows import narrate_flow

    job = tmp_path / "broken.yaml"
    job.write_text("name: broken\ninput: {files: [a.md]}\nengin: {}\n", encoding="utf-8")
    state: Any = asyncio.run(narrate_flow(job_path=str(job), quiet=True, return_state=True))  # type: ignore[arg-type]
    assert state.is_failed() and "unknown key 'engin'" in str(state.message)
    [summary] = asyncio.run(_artifacts(state.state_details.flow_run_id))
    assert summary.key == "narrate-broken-summary"
    assert str(state.message) in summary.data
