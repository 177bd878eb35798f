"""The chunk cache: keys cover exactly what shapes the audio, entries are atomic and verified,
and stats/prune manage the store. Real files, real jobs and real manuscripts; no synthesis."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cache import ChunkCache, cache_key
from pipeline.cli import main
from pipeline.config import EngineConfig, load_job
from pipeline.errors import OutputError
from pipeline.models import ChunkAudio, WordTiming
from pipeline.prepare import prepare_book
from pipeline.synthesis import keys_for
from pipeline.tts.asyncflow import asyncflow_identity
from pipeline.tts.factory import make_engine
from tests.jobs import write_job
from tests.resume_support import short_book

IDENTITY: dict[str, Any] = asyncflow_identity(EngineConfig(kind="asyncflow"))


def speech_like(n_samples: int = 4800, n_words: int = 3, seed: int = 0) -> ChunkAudio:
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal(n_samples) * 3000).astype(np.int16)
    step = max(1, n_samples * 1000 // 24000 // n_words)
    timings = tuple(WordTiming(i * step, (i + 1) * step) for i in range(n_words))
    return ChunkAudio(samples, 24000, timings)


def same_audio(a: ChunkAudio, b: ChunkAudio) -> bool:
    return a.sample_rate == b.sample_rate and a.timings == b.timings and np.array_equal(a.samples, b.samples)


# --- keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("engine", "local"),
        ("model", "async_flash_v2.0"),
        ("voice", "another-voice"),
        ("language", "fr"),
        ("speed", 1.2),
        ("stability", 40),
        ("sample_rate", 44100),
        ("container", "raw"),
        ("encoding", "pcm_f32le"),
    ],
)
def test_every_audio_setting_changes_the_key(field: str, value: object) -> None:
    words = ("Hello", "there.")
    assert IDENTITY[field] != value
    assert cache_key({**IDENTITY, field: value}, words) != cache_key(IDENTITY, words)


def test_key_ignores_identity_order_and_the_api_host() -> None:
    words = ("Hello", "there.")
    reordered = dict(reversed(list(IDENTITY.items())))
    assert cache_key(reordered, words) == cache_key(IDENTITY, words)
    elsewhere = asyncflow_identity(EngineConfig(kind="asyncflow", base_url="http://127.0.0.1:9", api_key_env="OTHER"))
    assert cache_key(elsewhere, words) == cache_key(IDENTITY, words)


@given(st.lists(st.text(max_size=12), max_size=6), st.lists(st.text(max_size=12), max_size=6))
def test_different_spoken_words_never_share_a_key(a: list[str], b: list[str]) -> None:
    # Word boundaries count too: ("ab",) and ("a", "b") are different requests to an engine.
    assert (cache_key(IDENTITY, a) == cache_key(IDENTITY, b)) == (a == b)


def _book_keys(job_path: Path) -> list[str]:
    job = load_job(job_path)
    return keys_for(prepare_book(job).chunks, make_engine(job.config))


def test_keys_ignore_paths_names_and_output_settings(tmp_path: Path) -> None:
    manuscript = tmp_path / "a" / "book.md"
    manuscript.parent.mkdir()
    manuscript.write_text(short_book(), encoding="utf-8")
    base = _book_keys(write_job(tmp_path, name="first", input={"files": [str(manuscript)]}))
    moved = tmp_path / "elsewhere" / "renamed.md"
    moved.parent.mkdir()
    shutil.copy(manuscript, moved)
    other = tmp_path / "other"
    other.mkdir()
    variant = write_job(
        other,
        name="second",
        title="Another Title",
        input={"files": [str(moved)]},
        audio={"formats": ["flac", "mp3"], "loudness": "podcast", "sentence_pause_ms": 500},
        outputs={"subtitles": ["vtt"], "subtitle_style": {"max_chars_per_line": 30, "karaoke_vtt": True}},
        limits={"requests_per_minute": 10, "max_concurrency": 1},
        cache_dir=str(other / "cache"),
    )
    assert _book_keys(variant) == base
    assert len(set(base)) == len(base)  # every chunk of the short book has its own text


def test_editing_one_paragraph_changes_only_its_chunks(tmp_path: Path) -> None:
    text = short_book(paragraphs=4)
    manuscript = tmp_path / "book.md"
    manuscript.write_text(text, encoding="utf-8")
    job = write_job(tmp_path, input={"files": [str(manuscript)]}, text={"max_chars": 60})
    before = set(_book_keys(job))
    paragraphs = text.split("\n\n")
    target = 3  # a body paragraph of chapter A
    assert not paragraphs[target].startswith("#")
    paragraphs[target] = paragraphs[target].replace("beside the water", "beside the old stone wall")
    manuscript.write_text("\n\n".join(paragraphs), encoding="utf-8")
    book = prepare_book(load_job(job))
    # Word offsets index the rendered text of the document; the plain paragraph renders as is.
    start = book.documents[0].text.index(paragraphs[target])
    end = start + len(paragraphs[target])
    inside = [c for c in book.chunks if start <= c.start and c.end <= end]
    keys = _book_keys(job)
    changed = {k for k in keys if k not in before}
    assert len(inside) >= 2  # the paragraph spans several chunks at 60 characters
    assert changed == {k for c, k in zip(book.chunks, keys, strict=True) if c in inside}


def test_voice_change_changes_every_key(tmp_path: Path) -> None:
    manuscript = tmp_path / "book.md"
    manuscript.write_text(short_book(), encoding="utf-8")
    a = _book_keys(write_job(tmp_path, name="a", input={"files": [str(manuscript)]}))
    b = _book_keys(write_job(tmp_path, name="b", input={"files": [str(manuscript)]}, engine={"voice": "en-gb"}))
    assert not set(a) & set(b)


# --- entries ------------------------------------------------------------------------------


def test_round_trip_and_timing_kinds(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path)
    audio = speech_like()
    cache.put("a" * 64, audio)
    got = cache.get("a" * 64)
    assert got is not None and same_audio(got, audio)
    cache.put("b" * 64, audio, exact_timings=False)  # asked without timestamps: estimates only
    assert cache.get("b" * 64) is None
    estimated = cache.get("b" * 64, need_exact_timings=False)
    assert estimated is not None and same_audio(estimated, audio)
    assert cache.get("c" * 64) is None


def test_entries_are_readable_like_any_file(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = ChunkCache(tmp_path).put("a" * 64, speech_like())
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def _corrupt_once(mutate: Any) -> None:
    root = Path(tempfile.mkdtemp(prefix="narrate-cache-"))
    try:
        cache = ChunkCache(root)
        key = "d" * 64
        path = cache.put(key, speech_like(n_samples=600, n_words=2))
        blob = path.read_bytes()
        path.write_bytes(mutate(blob))
        if path.read_bytes() == blob:
            return  # the mutation was a no-op; nothing to check
        assert cache.get(key, need_exact_timings=False) is None
        assert not path.exists()  # a corrupt entry is discarded, so the next run re-synthesizes it
    finally:
        shutil.rmtree(root)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_flipped_byte_is_detected(data: st.DataObject) -> None:
    def flip(blob: bytes) -> bytes:
        i = data.draw(st.integers(0, len(blob) - 1))
        bit = data.draw(st.integers(0, 7))
        return blob[:i] + bytes([blob[i] ^ (1 << bit)]) + blob[i + 1 :]

    _corrupt_once(flip)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_truncation_is_detected(data: st.DataObject) -> None:
    _corrupt_once(lambda blob: blob[: data.draw(st.integers(0, len(blob) - 1))])


@pytest.mark.parametrize("content", [b"", b"garbage", b"NRTC\x01\xff\xff\xff\xff{}", b"\x00" * 4096])
def test_garbage_entries_are_misses(tmp_path: Path, content: bytes) -> None:
    cache = ChunkCache(tmp_path)
    path = cache.path_for("e" * 64)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert cache.get("e" * 64) is None and not path.exists()


def test_an_entry_filed_under_another_key_is_refused(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path)
    source = cache.put("f" * 64, speech_like())
    wrong = cache.path_for("0" * 64)
    wrong.parent.mkdir(parents=True)
    shutil.copy(source, wrong)
    assert cache.get("0" * 64) is None
    assert cache.get("f" * 64) is not None


def test_an_interrupted_write_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ChunkCache(tmp_path)

    def power_cut(fd: int) -> None:
        raise KeyboardInterrupt  # stands for a kill between write and rename

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(KeyboardInterrupt):
        cache.put("a" * 64, speech_like())
    monkeypatch.undo()
    assert cache.get("a" * 64) is None
    assert not list(tmp_path.rglob("*.chunk")) and not list(tmp_path.rglob(".tmp-*"))


def test_unwritable_cache_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file, not a folder")
    with pytest.raises(OutputError, match=r"cache.*cache_dir") as info:
        ChunkCache(blocker).put("a" * 64, speech_like())
    assert "\n" not in str(info.value)
    assert blocker.read_text() == "a file, not a folder"


def test_concurrent_writers_and_readers_only_ever_see_whole_entries(tmp_path: Path) -> None:
    """Two jobs sharing a cache: readers racing writers of the same key get a complete entry
    or nothing, never a torn one."""
    cache = ChunkCache(tmp_path)
    key = "9" * 64
    versions = [speech_like(n_samples=48000, seed=s) for s in range(3)]
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def writer(audio: ChunkAudio) -> None:
        while not stop.is_set():
            cache.put(key, audio)

    def reader() -> None:
        try:
            while not stop.is_set():
                got = cache.get(key)
                if got is not None:
                    seen.append(next(i for i, v in enumerate(versions) if same_audio(got, v)))
        except BaseException as exc:  # StopIteration: a torn entry that matches no version
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(seen) > 10 and len(set(seen)) >= 2  # really raced, and saw different writers win
    assert not list(tmp_path.rglob(".tmp-*"))


# --- stats and prune ----------------------------------------------------------------------


def _aged_cache(root: Path) -> tuple[ChunkCache, list[Path]]:
    cache = ChunkCache(root)
    now = time.time()
    paths = []
    for n, days in enumerate([40, 20, 5, 1]):
        path = cache.put(f"{n}" * 64, speech_like(n_samples=24000))
        os.utime(path, (now - days * 86400, now - days * 86400))
        paths.append(path)
    return cache, paths


def test_stats_count_entries_not_temporaries(tmp_path: Path) -> None:
    cache, paths = _aged_cache(tmp_path)
    (paths[0].parent / ".tmp-leftover").write_bytes(b"x" * 1000)
    s = cache.stats()
    assert s.entries == 4
    assert s.bytes == sum(p.stat().st_size for p in paths)
    assert s.oldest is not None and s.newest is not None
    assert s.oldest == pytest.approx(time.time() - 40 * 86400, abs=60)


def test_prune_by_age_keeps_what_was_used_recently(tmp_path: Path) -> None:
    cache, paths = _aged_cache(tmp_path)
    assert cache.get("0" * 64) is not None  # using the 40-day-old entry makes it recent
    assert cache.prune(older_than_days=10) == 1
    assert [p.exists() for p in paths] == [True, False, True, True]


def test_prune_by_size_drops_least_recently_used_first(tmp_path: Path) -> None:
    cache, paths = _aged_cache(tmp_path)
    size = paths[0].stat().st_size
    assert cache.prune(max_bytes=2 * size) == 2
    assert [p.exists() for p in paths] == [False, False, True, True]


def test_prune_sweeps_stale_temporaries_only(tmp_path: Path) -> None:
    cache, paths = _aged_cache(tmp_path)
    stale, live = paths[0].parent / ".tmp-old", paths[0].parent / ".tmp-new"
    for p in (stale, live):
        p.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    cache.prune(older_than_days=1000)
    assert not stale.exists() and live.exists()


def test_cache_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _aged_cache(tmp_path / "c")
    assert main(["cache", "stats", "--cache-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "4 chunks" in out and "1.0 to 40.0 days ago" in out
    assert main(["cache", "prune", "--cache-dir", str(tmp_path / "c"), "--older-than-days", "10"]) == 0
    assert "removed 2 chunks; 2 chunks" in capsys.readouterr().out
    assert main(["cache", "prune", "--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("narrate: error: ") and "--older-than-days" in err and "\n" not in err
    job = write_job(tmp_path, cache_dir=str(tmp_path / "c"))
    assert main(["cache", "stats", str(job)]) == 0
    assert "2 chunks" in capsys.readouterr().out


def test_has_answers_from_the_header_and_catches_truncation(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path)
    path = cache.put("a" * 64, speech_like())
    cache.put("b" * 64, speech_like(), exact_timings=False)
    assert cache.has("a" * 64) and not cache.has("c" * 64)
    assert not cache.has("b" * 64) and cache.has("b" * 64, need_exact_timings=False)
    path.write_bytes(path.read_bytes()[:-1])
    assert not cache.has("a" * 64)
    shutil.copy(cache.path_for("b" * 64), path)  # another key's entry under this name
    assert not cache.has("a" * 64, need_exact_timings=False)
