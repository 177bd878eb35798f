"""What a run leaves in the Prefect UI: a markdown summary of report.json and links to the outputs.

The summary is built from report.json alone (a pure function, tested without Prefect), so the
UI and the file never disagree. Publishing never fails a run: the outputs are on disk whatever
happens to the artifacts.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def artifact_key(job_name: str, kind: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes; a key groups one job's runs."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"narrate-{job_name}-{kind}".lower()).strip("-")
    return slug


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def _level(value: object) -> str:
    return "—" if value is None else f"{value:.1f}" if isinstance(value, float | int) else _cell(value)


def _requests_line(report: dict[str, Any]) -> str:
    stats = report.get("requests") or {}
    if "requests" not in stats:
        return f"none (the {report.get('engine', {}).get('kind', 'local')} engine speaks offline)"
    limited = sum((stats.get("rate_limited") or {}).values())
    return (
        f"{stats['requests']} ({stats.get('retries', 0)} retries, {limited} rate-limited, "
        f"{stats.get('server_errors', 0)} server errors)"
    )


def summary_markdown(report: dict[str, Any], output_dir: Path) -> str:
    """The run at a glance: totals, chapters, measured loudness per file, links to outputs."""
    book = report.get("book", {})
    chapters = book.get("chapters", [])
    written = sum(1 for ch in chapters if ch.get("written"))
    failed = report.get("chunks_failed", 0)
    status = "finished" if not failed else f"**incomplete: {failed} chunk(s) failed**"
    lines = [
        f"# {_cell(book.get('title') or report.get('job', 'narrate'))}",
        "",
        f"Job `{report.get('job')}`, {status}, at {report.get('finished_at', '?')} on {report.get('host', '?')}.",
        "",
        "| | |",
        "|---|---|",
        f"| Chapters | {len(chapters)} ({written} written) |",
        f"| Duration | {_duration(float(report.get('audio_seconds', 0)))} |",
        f"| Chunks | {report.get('chunks_total', 0)} ({report.get('chunks_synthesized', 0)} synthesized, "
        f"{report.get('chunks_from_cache', 0)} from cache, {failed} failed) |",
        f"| Requests | {_requests_line(report)} |",
        f"| Cost | ${float(report.get('cost_usd', 0)):.2f} |",
        f"| Wall time | {float(report.get('wall_seconds', 0)):.1f} s |",
    ]
    if report.get("stopped_by"):
        lines.append(f"| Stopped by | {_cell(report['stopped_by'])} |")
    lines += ["", "## Chapters", "", "| # | Title | Chunks | Written |", "|---:|---|---:|---|"]
    for ch in chapters:
        lines.append(
            f"| {ch.get('index')} | {_cell(ch.get('title') or '')} | {ch.get('chunks', 0)} | "
            f"{'yes' if ch.get('written') else 'no'} |"
        )
    audio = report.get("outputs", {}).get("audio", [])
    lines += [
        "",
        "## Loudness per file",
        "",
        "| File | Duration | Integrated (LUFS) | RMS (dBFS) | True peak (dBTP) | Meets profile |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for f in audio:
        verdict = "yes" if f.get("meets_profile") else "no: " + _cell("; ".join(f.get("problems", [])))
        lines.append(
            f"| {_cell(f.get('path'))} | {_duration(float(f.get('duration_s', 0)))} "
            f"| {_level(f.get('integrated_lufs'))} | {_level(f.get('rms_db'))} | {_level(f.get('true_peak_db'))} "
            f"| {verdict} |"
        )
    lines += ["", "## Outputs", "", f"Folder: [{_cell(output_dir)}]({output_dir.as_uri()})", ""]
    for rel in _output_files(report):
        lines.append(f"- [{_cell(rel)}]({(output_dir / rel).as_uri()})")
    lines.append(f"- [report.json]({(output_dir / 'report.json').as_uri()})")
    return "\n".join(lines) + "\n"


def _output_files(report: dict[str, Any]) -> list[str]:
    outputs = report.get("outputs", {})
    files = [a["path"] for a in outputs.get("audio", [])] + outputs.get("subtitles", []) + outputs.get("other", [])
    return sorted(files, key=lambda p: (p.count("/"), p))


def failure_markdown(job_name: str, message: str) -> str:
    return f"# narrate: job `{job_name}` did not run\n\n{_cell(message)}\n"


async def publish_report(report: dict[str, Any], output_dir: Path, *, name: str | None = None) -> None:
    """The summary, plus link artifacts for the output folder and the whole-book files.
    ``name`` keys the artifacts (default: the job's name; watch mode adds the book's)."""
    from prefect.artifacts import acreate_link_artifact, acreate_markdown_artifact

    job = name or str(report.get("job", "job"))
    try:
        await acreate_markdown_artifact(
            summary_markdown(report, output_dir),
            key=artifact_key(job, "summary"),
            description=f"narrate run of {job}",
        )
        await acreate_link_artifact(
            output_dir.as_uri(), link_text=f"{job}: output folder", key=artifact_key(job, "outputs")
        )
        for rel in _output_files(report):
            if "/" not in rel:  # the whole-book files; chapter files are listed in the summary
                await acreate_link_artifact((output_dir / rel).as_uri(), link_text=rel)
    except Exception as exc:
        log.warning("could not publish the run's Prefect artifacts: %s", exc)


async def publish_failure(job_name: str, message: str) -> None:
    from prefect.artifacts import acreate_markdown_artifact

    try:
        await acreate_markdown_artifact(
            failure_markdown(job_name, message), key=artifact_key(job_name, "summary"), description=message
        )
    except Exception as exc:
        log.warning("could not publish the run's Prefect artifact: %s", exc)


async def publish_watch_summary(job_name: str, lines: list[str]) -> None:
    """Watch mode: which manuscripts this run narrated, skipped or failed."""
    from prefect.artifacts import acreate_markdown_artifact

    body = "\n".join([f"# narrate watch run: `{job_name}`", "", *[f"- {_cell(line)}" for line in lines]]) + "\n"
    try:
        await acreate_markdown_artifact(body, key=artifact_key(job_name, "watch"), description="watch mode run")
    except Exception as exc:
        log.warning("could not publish the run's Prefect artifact: %s", exc)
