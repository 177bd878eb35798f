"""`narrate estimate` and the spending limit: counts, duration, cost and what the cache holds."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.cache import ChunkCache
from pipeline.cli import main
from pipeline.config import load_job
from pipeline.estimate import WORDS_PER_MINUTE, Estimate, estimate
from pipeline.models import ChunkAudio, WordTiming
from pipeline.prepare import PreparedBook, prepare_book
from pipeline.synthesis import keys_for
from pipeline.tts.asyncflow import AsyncFlowEngine
from pipeline.tts.factory import needs_timings
from tests.jobs import write_job
from tests.resume_support import short_book

ASYNCFLOW = {"kind": "asyncflow", "voice": "e0f39dc4-f691-4e78-bba5-5c636692cc04", "base_url": "http://127.0.0.1:9"}


def _job(tmp_path: Path, text: str | None = None, **overrides: Any) -> Path:
    manuscript = tmp_path / "book.md"
    manuscript.write_text(text or short_book(), encoding="utf-8")
    return write_job(tmp_path, input={"files": [str(manuscript)]}, **overrides)


def _estimate(job_path: Path) -> tuple[Estimate, PreparedBook, list[str]]:
    job = load_job(job_path)
    book = prepare_book(job)
    engine = AsyncFlowEngine(engine=job.config.engine, limits=job.config.limits, api_key="unused")
    keys = keys_for(book.chunks, engine)
    cache = ChunkCache(job.cache_dir)
    return estimate(job.config, book.chunks, engine, cache, need_timings=needs_timings(job.config)), book, keys


def _fill(cache_dir: Path, book: PreparedBook, keys: list[str], indexes: range, *, exact: bool = True) -> None:
    cache = ChunkCache(cache_dir)
    for i in indexes:
        n = len(book.chunks[i].words)
        cache.put(keys[i], ChunkAudio(np.zeros(2400, np.int16), 24000, (WordTiming(0, 0),) * n), exact_timings=exact)


def test_counts_duration_and_cost(tmp_path: Path) -> None:
    est, book, _ = _estimate(_job(tmp_path, engine=ASYNCFLOW))
    words = sum(len(c.words) for c in book.chunks)
    transcripts = [" ".join(w for w in c.spoken_words if w) for c in book.chunks]
    assert est.chapters == 2 and est.chunks == len(book.chunks) == est.requests
    assert est.characters == sum(map(len, transcripts)) > 500
    assert est.words == words
    assert est.audio_seconds == pytest.approx(words * 60 / WORDS_PER_MINUTE, abs=0.1)
    assert est.cost_usd == pytest.approx(est.audio_seconds / 3600 * 0.50, abs=1e-4)  # the flash price
    assert est.cost_usd_remaining == est.cost_usd and est.chunks_cached == 0


def test_price_is_configurable_and_local_speech_is_free(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    dear, _, _ = _estimate(_job(tmp_path / "a", engine={**ASYNCFLOW, "price_per_hour_usd": 3.0}))
    assert dear.cost_usd == pytest.approx(dear.audio_seconds / 3600 * 3.0, abs=1e-4)
    local, _, _ = _estimate(_job(tmp_path / "b"))
    assert local.cost_usd == 0 and local.requests == local.chunks


def test_cached_chunks_are_not_paid_again(tmp_path: Path) -> None:
    job = _job(tmp_path, engine=ASYNCFLOW)
    full, book, keys = _estimate(job)
    _fill(tmp_path / "cache", book, keys, range(0, 5))
    part, _, _ = _estimate(job)
    assert part.chunks_cached == 5 and part.requests == full.requests - 5
    paid = sum(len(c.words) for c in book.chunks[5:]) * 60 / WORDS_PER_MINUTE / 3600 * 0.5
    assert part.cost_usd_remaining == pytest.approx(paid, abs=1e-4)
    assert part.cost_usd == full.cost_usd


def test_entries_without_real_timings_count_only_when_timings_are_not_needed(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "n").mkdir()
    shared: dict[str, Any] = {"engine": ASYNCFLOW, "cache_dir": str(tmp_path / "cache")}
    with_subtitles = _job(tmp_path / "t", **shared)
    audio_only = _job(tmp_path / "n", outputs={"subtitles": [], "alignment": False}, **shared)
    _, book, keys = _estimate(with_subtitles)
    _fill(tmp_path / "cache", book, keys, range(len(keys)), exact=False)
    assert _estimate(with_subtitles)[0].chunks_cached == 0
    assert _estimate(audio_only)[0].chunks_cached == len(keys)


def test_repeated_text_is_one_request(tmp_path: Path) -> None:
    refrain = "The bells rang out across the sleeping town."
    text = "\n\n".join(["## One", refrain, "Something else was said here.", "## Two", refrain, ""])
    est, book, keys = _estimate(_job(tmp_path, text=text, engine=ASYNCFLOW))
    assert len(set(keys)) == len(keys) - 1
    assert est.chunks == len(book.chunks) and est.requests == est.chunks - 1


def test_estimate_command_needs_no_key_and_contacts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASYNCAI_API_KEY", raising=False)
    job = _job(tmp_path, engine=ASYNCFLOW)  # base_url points at a closed port
    assert main(["estimate", str(job), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data.pop("preflight")["chapters"]  # the structure pre-flight rides along
    assert data == _estimate(job)[0].to_dict()
    assert main(["estimate", str(job)]) == 0
    text = capsys.readouterr().out
    assert f"chunks:     {data['chunks']} (0 already in the cache)" in text
    assert f"${data['cost_usd']:.2f} for the whole book" in text


class _Keyboard(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer", [None, "n", ""])
def test_run_refuses_to_spend_above_the_limit_without_consent(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str | None,
) -> None:
    monkeypatch.setenv("ASYNCAI_API_KEY", "sk_test_limit_0001")
    job = _job(tmp_path, engine=ASYNCFLOW, limits={"max_cost_usd": 0.001})
    if answer is None:
        monkeypatch.setattr("sys.stdin", io.StringIO(""))  # unattended: nobody to ask
    else:
        monkeypatch.setattr("sys.stdin", _Keyboard(answer + "\n"))
    assert main(["run", str(job)]) == 1
    captured = capsys.readouterr()
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith("narrate: error: ") and "limits.max_cost_usd" in last and "--yes" in last
    assert ("[y/N]" in captured.out) == (answer is not None)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_a_cached_book_costs_nothing_more(tmp_path: Path) -> None:
    job = _job(tmp_path, engine=ASYNCFLOW, limits={"max_cost_usd": 0.0})
    _, book, keys = _estimate(job)
    _fill(tmp_path / "cache", book, keys, range(len(keys)))
    est, _, _ = _estimate(job)
    assert est.cost_usd_remaining == 0 and est.cost_usd > 0
