"""Watch mode: a scheduled run narrates the manuscripts added (or changed) since the last run,
each as its own book, and skips the ones already done."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Job, load_job
from pipeline.errors import AuthError, ConfigError, InputError
from pipeline.orchestrate.watch import STATE_FILE, WatchState, job_for, run_watch, scan, watched_files
from pipeline.prepare import prepare_book
from tests.jobs import write_job


def _book(folder: Path, name: str, title: str, sentence: str = "The tide came in.") -> Path:
    path = folder / name
    path.write_text(f"# {title}\n\n## Chapter One\n\n{sentence} The gulls went quiet.\n", encoding="utf-8")
    return path


def _watch_job(tmp_path: Path, pattern: str = "inbox/*.md") -> Job:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    return load_job(write_job(tmp_path, name="inbox", title=None, input={"files": [pattern], "watch": True}))


async def _prepare_only(job: Job) -> dict[str, Any]:
    """A per-book run that does the real text stage (the real readers decide what fails) and
    reports what it would narrate."""
    book = prepare_book(job)
    return {"chunks_failed": 0, "audio_seconds": float(len(book.chunks)), "title": book.title}


def test_the_watched_folder_may_be_empty_but_must_exist(tmp_path: Path) -> None:
    job = _watch_job(tmp_path)
    assert watched_files(job) == []
    _book(tmp_path / "inbox", "a.md", "A")
    (tmp_path / "inbox" / "notes.txt").write_text("not a match", encoding="utf-8")
    assert watched_files(job) == [tmp_path / "inbox" / "a.md"]
    missing = load_job(write_job(tmp_path, name="m", input={"files": ["nowhere/*.md"], "watch": True}))
    with pytest.raises(ConfigError, match=r"input\.files\[0\]: folder not found"):
        watched_files(missing)


def test_new_and_changed_files_are_pending_done_ones_are_skipped(tmp_path: Path) -> None:
    job = _watch_job(tmp_path)
    a = _book(tmp_path / "inbox", "a.md", "A")
    _book(tmp_path / "inbox", "b.md", "B")
    state = WatchState.load(job.output_dir)
    pending, skipped = scan(job, state)
    assert [m.name for m in pending] == ["inbox/a.md", "inbox/b.md"] and skipped == []
    state.mark_done(pending[0], {"audio_seconds": 12.5})
    # The state survives on disk: a later run (a new process) sees it.
    again = WatchState.load(job.output_dir)
    pending, skipped = scan(job, again)
    assert [m.name for m in pending] == ["inbox/b.md"] and skipped == ["inbox/a.md"]
    a.write_text(a.read_text(encoding="utf-8") + "\nA new last line.\n", encoding="utf-8")
    pending, skipped = scan(job, again)
    assert [m.name for m in pending] == ["inbox/a.md", "inbox/b.md"] and skipped == []
    recorded = json.loads((job.output_dir / STATE_FILE).read_text(encoding="utf-8"))
    assert recorded["finished"]["inbox/a.md"]["output"] == "a"


def test_each_manuscript_is_its_own_book_in_its_own_folder(tmp_path: Path) -> None:
    job = _watch_job(tmp_path, pattern="inbox/*")
    _book(tmp_path / "inbox", "Harbour Tales.md", "Harbour Tales")
    (tmp_path / "inbox" / "Harbour Tales.txt").write_text("A plain text telling.\n", encoding="utf-8")
    pending, _ = scan(job, WatchState.load(job.output_dir))
    # One stem, two files: each keeps its extension so the folders stay apart.
    assert sorted(m.slug for m in pending) == ["harbour-tales-md", "harbour-tales-txt"]
    one = job_for(job, pending[0])
    assert one.output_dir == job.output_dir / pending[0].slug
    assert one.input_files() == [pending[0].path]
    assert one.config.title is None and not one.config.input.watch
    assert one.cache_dir == job.cache_dir  # the cache is shared: a retried book pays only for what is missing


def test_a_corrupt_state_file_is_one_clear_error(tmp_path: Path) -> None:
    job = _watch_job(tmp_path)
    job.output_dir.mkdir(parents=True)
    (job.output_dir / STATE_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        WatchState.load(job.output_dir)
    assert "delete it to start over" in str(err.value) and "\n" not in str(err.value)


async def test_a_failed_manuscript_stays_pending_and_the_rest_are_done(tmp_path: Path) -> None:
    job = _watch_job(tmp_path, pattern="inbox/*")
    _book(tmp_path / "inbox", "a.md", "A")
    (tmp_path / "inbox" / "b.epub").write_bytes(b"PK\x03\x04 half-copied zip")  # a real reader will refuse it
    _book(tmp_path / "inbox", "c.md", "C")
    result = await run_watch(job, _prepare_only)
    assert [m.name for m, _ in result.done] == ["inbox/a.md", "inbox/c.md"]
    assert [m.name for m, _ in result.failed] == ["inbox/b.epub"]
    assert "b.epub" in result.summary() and "2 narrated" in result.summary()
    second = await run_watch(job, _prepare_only)
    assert second.done == [] and [m.name for m, _ in second.failed] == ["inbox/b.epub"]
    assert second.skipped == ["inbox/a.md", "inbox/c.md"]


async def test_a_fatal_engine_error_stops_the_run(tmp_path: Path) -> None:
    job = _watch_job(tmp_path)
    for name in ("a.md", "b.md"):
        _book(tmp_path / "inbox", name, name)

    async def no_key(one: Job) -> dict[str, Any]:
        raise AuthError("no AsyncFlow API key: set the environment variable ASYNCAI_API_KEY")

    result = await run_watch(job, no_key)
    assert [m.name for m, _ in result.failed] == ["inbox/a.md"]  # b was not even tried
    assert not (job.output_dir / STATE_FILE).exists()


async def test_partial_runs_mark_nothing_done(tmp_path: Path) -> None:
    job = _watch_job(tmp_path)
    _book(tmp_path / "inbox", "a.md", "A")
    result = await run_watch(job, _prepare_only, record=False)
    assert len(result.done) == 1
    assert [m.name for m in scan(job, WatchState.load(job.output_dir))[0]] == ["inbox/a.md"]


async def test_input_errors_name_the_manuscript(tmp_path: Path) -> None:
    job = _watch_job(tmp_path)
    (tmp_path / "inbox" / "latin1.md").write_bytes("# Caf\xe9\n\nDéjà vu.\n".encode("latin-1"))
    result = await run_watch(job, _prepare_only)
    [(m, reason)] = result.failed
    assert reason.startswith("inbox/latin1.md: ") and "\n" not in reason
    with pytest.raises(InputError):
        prepare_book(job_for(job, m))


# --- the real flow, three scheduled runs in a row --------------------------------------------


@pytest.mark.slow
def test_watch_runs_narrate_only_what_is_new(
    tmp_path: Path, prefect_harness: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main
    from pipeline.flows import narrate_flow

    job = _watch_job(tmp_path)
    inbox = tmp_path / "inbox"
    _book(inbox, "first.md", "The First Book")
    _book(inbox, "second.md", "The Second Book", "The wind turned.")

    def run() -> Any:
        state: Any = asyncio.run(narrate_flow(job_path=str(job.path), quiet=True, return_state=True))  # type: ignore[arg-type]
        assert state.is_completed(), state.message
        return state

    assert run().message == "2 narrated, 0 already done"
    first_report = job.output_dir / "first" / "report.json"
    for slug, title, audio in (
        ("first", "The First Book", "the-first-book.wav"),
        ("second", "The Second Book", "the-second-book.wav"),
    ):
        report = json.loads((job.output_dir / slug / "report.json").read_text(encoding="utf-8"))
        assert report["book"]["title"] == title and report["chunks_failed"] == 0
        assert (job.output_dir / slug / audio).is_file()
    stamp = first_report.stat().st_mtime_ns

    assert run().message == "0 narrated, 2 already done"
    _book(inbox, "third.md", "The Third Book", "The boats came home.")
    assert run().message == "1 narrated, 2 already done"
    assert first_report.stat().st_mtime_ns == stamp  # the first book was not touched again
    assert (job.output_dir / "third" / "report.json").is_file()
    # `narrate run` on a watch job does what one scheduled run does.
    capsys.readouterr()
    assert main(["run", str(job.path), "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("inbox: 0 narrated, 3 already done; outputs in ")
