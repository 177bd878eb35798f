"""Resume: a rerun pays only for what is not finished, whatever stopped the last run.

Fast tests drive ``synthesize_all`` with the real local engine. Slow ones run the real flow
in-process (settings changes, an edited paragraph, failed chunks, a quota stop, a locked
output folder) and, in test_resume_kill.py, kill real `narrate run` processes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from pipeline.cache import ChunkCache
from pipeline.cli import main
from pipeline.config import load_job
from pipeline.emulator.faults import FaultInjector
from pipeline.emulator.server import RunningEmulator, serve_in_thread
from pipeline.emulator.settings import EmulatorSettings, FaultKind
from pipeline.emulator.stats import transcript_hash
from pipeline.emulator.validation import Endpoint
from pipeline.errors import OutputError, QuotaExceededError, ServerError
from pipeline.estimate import transcript_of
from pipeline.fsutil import output_lock
from pipeline.models import Chunk, ChunkAudio
from pipeline.prepare import PreparedBook, prepare_book
from pipeline.synthesis import SynthesisResult, keys_for, synthesize_all
from pipeline.tts.local import LocalEngine
from tests.emulator_support import SARAH
from tests.jobs import write_job
from tests.resume_support import cache_keys, short_book, snapshot

KEY = "sk_test_resume_7Hq2Lx9Vw4Mz"


class SpyEngine:
    """The real local engine, recording every chunk it is asked for; it can fail chosen
    chunks (as a retryable error that outlived its retries) or stop the job after N chunks."""

    def __init__(self, *, fail: Sequence[str] = (), quota_after: int | None = None) -> None:
        self.inner = LocalEngine(voice="en-us", sample_rate=16000)
        self.fail = set(fail)
        self.quota_after = quota_after
        self.calls: list[str] = []

    async def synthesize(self, words: Sequence[str], *, chunk_id: str, need_timings: bool) -> ChunkAudio:
        if self.quota_after is not None and len(self.calls) >= self.quota_after:
            raise QuotaExceededError(f"chunk {chunk_id}: monthly character quota exhausted (429 USAGE_LIMIT_EXCEEDED)")
        self.calls.append(chunk_id)
        if chunk_id in self.fail:
            raise ServerError(f"chunk {chunk_id}: 503 service unavailable (gave up after 3 attempts)")
        return await self.inner.synthesize(words, chunk_id=chunk_id, need_timings=need_timings)

    async def check(self) -> None:
        await self.inner.check()

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def book(tmp_path: Path) -> PreparedBook:
    manuscript = tmp_path / "book.md"
    manuscript.write_text(short_book(chapters=2, paragraphs=2), encoding="utf-8")
    return prepare_book(load_job(write_job(tmp_path, input={"files": [str(manuscript)]}, text={"max_chars": 60})))


async def synth(book: PreparedBook, cache: ChunkCache, engine: SpyEngine, **kw: Any) -> SynthesisResult:
    return await synthesize_all(book.chunks, engine=engine, cache=cache, need_timings=True, workers=2, **kw)


async def test_second_run_synthesizes_nothing(book: PreparedBook, tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path / "c")
    seen: list[tuple[int, int]] = []
    first = SpyEngine()
    result = await synth(book, cache, first, progress=lambda p: seen.append((p.done, p.from_cache)))
    assert sorted(first.calls) == sorted(c.id for c in book.chunks)
    assert not result.failures and result.fatal is None
    assert [c.chunk for c in result.chunks] == list(book.chunks) and not any(c.from_cache for c in result.chunks)
    assert seen[0] == (0, 0) and seen[-1] == (len(book.chunks), 0)
    again = SpyEngine()
    seen.clear()
    result = await synth(book, cache, again, progress=lambda p: seen.append((p.done, p.from_cache)))
    assert again.calls == [] and all(c.from_cache for c in result.chunks)
    assert seen == [(len(book.chunks), len(book.chunks))]  # known at once: the ETA needs it


async def test_fresh_ignores_the_cache(book: PreparedBook, tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path / "c")
    await synth(book, cache, SpyEngine())
    fresh = SpyEngine()
    await synth(book, cache, fresh, fresh=True)
    assert len(fresh.calls) == len(book.chunks)


async def test_a_corrupt_entry_is_synthesized_again_and_only_it(book: PreparedBook, tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path / "c")
    await synth(book, cache, SpyEngine())
    victim = book.chunks[3]
    path = cache.path_for(keys_for([victim], SpyEngine())[0])
    path.write_bytes(path.read_bytes()[:-100])  # truncated, as by a full disk
    again = SpyEngine()
    result = await synth(book, cache, again)
    assert again.calls == [victim.id]
    assert [c.chunk.id for c in result.chunks if not c.from_cache] == [victim.id]


async def test_failed_chunks_are_listed_and_retried_next_time(book: PreparedBook, tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path / "c")
    broken = [book.chunks[1].id, book.chunks[-1].id]
    result = await synth(book, cache, SpyEngine(fail=broken))
    assert result.fatal is None
    assert [f.chunk.id for f in result.failures] == broken
    assert len(result.chunks) == len(book.chunks) - 2
    failure = result.failures[0].to_dict()
    assert failure["chunk"] == broken[0] and failure["chapter"] == book.chunks[1].chapter + 1
    assert failure["excerpt"] == book.chunks[1].text and "503" in str(failure["reason"])
    retry = SpyEngine()
    result = await synth(book, cache, retry)
    assert sorted(retry.calls) == sorted(broken) and not result.failures


async def test_a_quota_stop_keeps_what_was_finished(book: PreparedBook, tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path / "c")
    stopped = SpyEngine(quota_after=5)
    result = await synth(book, cache, stopped)
    assert isinstance(result.fatal, QuotaExceededError)
    assert len(result.chunks) == 5 == len(cache_keys(tmp_path / "c"))
    rest = SpyEngine()
    result = await synth(book, cache, rest)
    assert len(rest.calls) == len(book.chunks) - 5
    assert not set(rest.calls) & set(stopped.calls) and result.fatal is None


async def test_an_unwritable_cache_stops_the_run_at_once(book: PreparedBook, tmp_path: Path) -> None:
    blocker = tmp_path / "c"
    blocker.write_text("not a folder")
    engine = SpyEngine()
    result = await synth(book, ChunkCache(blocker), engine)
    assert isinstance(result.fatal, OutputError) and "cache_dir" in str(result.fatal)
    assert len(engine.calls) <= 2  # one per worker, not one per chunk


async def test_repeated_text_is_requested_once(tmp_path: Path) -> None:
    refrain = "The bells rang out across the sleeping town."
    manuscript = tmp_path / "refrain.md"
    manuscript.write_text(f"## One\n\n{refrain}\n\nA different line.\n\n## Two\n\n{refrain}\n", encoding="utf-8")
    book = prepare_book(load_job(write_job(tmp_path, input={"files": [str(manuscript)]})))
    engine = SpyEngine()
    result = await synth(book, ChunkCache(tmp_path / "c"), engine)
    repeats = [c for c in result.chunks if c.chunk.text == refrain]
    assert len(repeats) == 2 and repeats[0].cache_key == repeats[1].cache_key
    assert len(engine.calls) == len(book.chunks) - 1
    assert [r.from_cache for r in repeats] == [False, True]  # the second was never paid for


# --- the real flow, in-process ------------------------------------------------------------


def run(job: Path, *extra: str) -> tuple[int, dict[str, Any] | None]:
    code = main(["run", str(job), "--quiet", *extra])
    out = load_job(job).output_dir
    report = out / "report.json"
    return code, json.loads(report.read_text()) if report.exists() else None


@pytest.mark.slow
def test_output_settings_paths_and_names_resynthesize_nothing(tmp_path: Path, prefect_harness: None) -> None:
    manuscript = tmp_path / "book.md"
    manuscript.write_text(short_book(), encoding="utf-8")
    code, first = run(write_job(tmp_path, name="one", input={"files": [str(manuscript)]}))
    assert code == 0 and first is not None and first["chunks_synthesized"] == first["chunks_total"]
    moved = tmp_path / "moved" / "renamed.md"
    moved.parent.mkdir()
    manuscript.rename(moved)
    other = write_job(
        tmp_path,
        name="two",
        input={"files": [str(moved)]},
        audio={"formats": ["flac", "mp3"], "loudness": "podcast"},
        outputs={"subtitles": ["vtt"], "subtitle_style": {"max_chars_per_line": 30, "karaoke_vtt": True}},
    )
    code, second = run(other)
    assert code == 0 and second is not None
    assert second["chunks_synthesized"] == 0 and second["chunks_from_cache"] == first["chunks_total"]
    out = tmp_path / "out" / "two"
    assert {p.suffix for p in out.glob("*.*")} >= {".flac", ".mp3", ".vtt"}


@pytest.mark.slow
def test_editing_a_paragraph_pays_only_for_its_chunks(tmp_path: Path, prefect_harness: None) -> None:
    manuscript = tmp_path / "book.md"
    text = short_book(chapters=1, paragraphs=4)
    manuscript.write_text(text, encoding="utf-8")
    job = write_job(tmp_path, input={"files": [str(manuscript)]}, text={"max_chars": 60})
    assert run(job)[0] == 0
    edited = text.replace("The quiet harbour turned beside the water.", "The quiet harbour turned toward the hills.")
    assert edited != text
    manuscript.write_text(edited, encoding="utf-8")
    code, report = run(job)
    assert code == 0 and report is not None
    assert report["chunks_synthesized"] == 1 and report["chunks_from_cache"] == report["chunks_total"] - 1
    srt = next((tmp_path / "out" / "t").glob("*.srt")).read_text()
    assert "toward the hills" in srt.replace("\n", " ")


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with serve_in_thread(EmulatorSettings(api_keys=(KEY,), rpm=0, concurrency=0)) as running:
        yield running


def asyncflow_job(folder: Path, emulator: RunningEmulator, **overrides: Any) -> Path:
    manuscript = folder / "book.md"
    manuscript.write_text(short_book(chapters=3, paragraphs=2), encoding="utf-8")
    engine = {"kind": "asyncflow", "voice": SARAH, "base_url": emulator.url, "sample_rate": 16000}
    limits = {"requests_per_minute": 6000, "max_concurrency": 3, "retries": 0, **overrides.pop("limits", {})}
    return write_job(folder, input={"files": [str(manuscript)]}, engine=engine, limits=limits, **overrides)


def successes(emulator: RunningEmulator) -> dict[str, int]:
    return dict(emulator.stats()["synth_successes"])


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {h: n - before.get(h, 0) for h, n in after.items() if n - before.get(h, 0)}


def hashes(chunks: Sequence[Chunk]) -> dict[str, int]:
    return {transcript_hash(transcript_of(c)): 1 for c in chunks}


def failing_seed(chunks: Sequence[Chunk], rate: float, faults: tuple[FaultKind, ...]) -> tuple[int, set[str]]:
    """A seed whose first attempts fail some chunks of the second chapter and none of the
    first or third, found with the emulator's own fault decisions."""
    for seed in range(500):
        settings = EmulatorSettings(fail_rate=rate, faults=faults, seed=seed)
        injector = FaultInjector()
        bad = {c.id for c in chunks if injector.decide(settings, Endpoint.TIMESTAMPS, transcript_of(c))}
        chapters = {int(i[1:5]) for i in bad}
        if chapters == {1}:
            return seed, bad
    raise AssertionError("no seed fails chapter 2 only")


@pytest.mark.slow
def test_failed_chunks_reported_complete_chapters_written_then_only_failures_retried(
    tmp_path: Path, prefect_harness: None, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCAI_API_KEY", KEY)
    job = asyncflow_job(tmp_path, emulator)
    chunks = prepare_book(load_job(job)).chunks
    faults = (FaultKind.SERVER_500, FaultKind.DROP, FaultKind.UNAVAILABLE_503)
    seed, bad = failing_seed(chunks, 0.3, faults)
    emulator.configure(fail_rate=0.3, faults=faults, seed=seed)
    code, report = run(job)
    assert code == 1 and report is not None
    assert {f["chunk"] for f in report["failures"]} == bad
    for failure in report["failures"]:
        chunk = next(c for c in chunks if c.id == failure["chunk"])
        assert failure["chapter"] == chunk.chapter + 1 and failure["excerpt"] == chunk.text
        assert failure["reason"].startswith(f"chunk {chunk.id}: ")
    assert 2 in report["chapters_incomplete"] and 1 not in report["chapters_incomplete"]
    chapter_files = sorted(p.name[:3] for p in (tmp_path / "out" / "t" / "chapters").glob("*.wav"))
    assert chapter_files == ["01-", "03-"]  # the complete chapters, not the one with a hole
    assert not list((tmp_path / "out" / "t").glob("*.wav"))  # no whole book with a hole in it
    before = successes(emulator)
    emulator.configure(fail_rate=0.0)
    code, report = run(job)
    assert code == 0 and report is not None and report["chunks_failed"] == 0
    assert delta(successes(emulator), before) == hashes([c for c in chunks if c.id in bad])
    assert report["chunks_synthesized"] == len(bad)


@pytest.mark.slow
def test_quota_stop_then_resume(
    tmp_path: Path, prefect_harness: None, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCAI_API_KEY", KEY)
    job = asyncflow_job(tmp_path, emulator, limits={"max_concurrency": 1})
    chunks = prepare_book(load_job(job)).chunks
    first_chapter = [c for c in chunks if c.chapter == 0]
    emulator.configure(monthly_chars=sum(len(transcript_of(c)) for c in first_chapter) + 5)
    code, report = run(job)
    assert code == 1 and report is not None
    assert "USAGE_LIMIT_EXCEEDED" in report["stopped_by"] or "quota" in report["stopped_by"].lower()
    assert report["chapters_incomplete"] == [2, 3]
    assert len(cache_keys(tmp_path / "cache")) == len(first_chapter)
    before = successes(emulator)
    emulator.configure(monthly_chars=None)
    code, report = run(job)
    assert code == 0 and report is not None
    assert delta(successes(emulator), before) == hashes([c for c in chunks if c.chapter > 0])


@pytest.mark.slow
def test_a_second_run_of_the_same_job_is_turned_away(
    tmp_path: Path, prefect_harness: None, capsys: pytest.CaptureFixture[str]
) -> None:
    manuscript = tmp_path / "book.md"
    manuscript.write_text(short_book(chapters=1, paragraphs=1), encoding="utf-8")
    job = write_job(tmp_path, input={"files": [str(manuscript)]})
    assert run(job)[0] == 0
    out = tmp_path / "out" / "t"
    before = snapshot(out)
    capsys.readouterr()
    with output_lock(out):  # another run holds the folder
        code, _ = run(job, "--fresh")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "another narrate run" in err[0]
    assert snapshot(out) == before


@pytest.mark.slow
def test_an_unreachable_api_is_one_line_and_spends_nothing(
    tmp_path: Path, prefect_harness: None, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A network that is down before the first request: the engine's check fails once its
    retries are spent, the run ends with one line (no Prefect traceback) and nothing cached."""
    from tests.prefect_server import free_port

    monkeypatch.setenv("ASYNCAI_API_KEY", KEY)
    manuscript = tmp_path / "book.md"
    manuscript.write_text(short_book(chapters=1, paragraphs=1), encoding="utf-8")
    engine = {"kind": "asyncflow", "voice": SARAH, "base_url": f"http://127.0.0.1:{free_port()}"}
    job = write_job(tmp_path, input={"files": [str(manuscript)]}, engine=engine, limits={"retries": 0})
    code, report = run(job)
    err = capfd.readouterr().err
    assert code == 1 and report is None
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("narrate: error: ") and "connection failed" in lines[0]
    assert not cache_keys(tmp_path / "cache")
