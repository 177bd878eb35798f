"""The review page's pieces that need no finished job: path rules, overrides, lexicon edits, peaks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.config import load_job
from pipeline.errors import ConfigError
from pipeline.prepare import prepare_book
from pipeline.review.app import resolve_inside
from pipeline.review.fixes import set_pronunciation, set_spoken_text
from pipeline.review.peaks import cached_peaks, compute_peaks
from pipeline.text.lexicon import load_lexicon_file
from pipeline.text.overrides import overrides_path
from tests.review_support import RARE_WORD, write_review_job


def test_resolve_inside_keeps_to_the_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "chapters").mkdir(parents=True)
    (out / "chapters" / "01-a.wav").write_bytes(b"x")
    (out / ".narrate-review").mkdir()
    (out / ".narrate-review" / "p.wav").write_bytes(b"x")
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"s")
    os.symlink(secret, out / "chapters" / "link.wav")
    assert resolve_inside(out, "chapters/01-a.wav") == (out / "chapters" / "01-a.wav").resolve()
    for bad in [
        "../secret.wav",
        "chapters/../../secret.wav",
        str(secret),
        "chapters/link.wav",
        ".narrate-review/p.wav",
        "chapters",
        "chapters/missing.wav",
        "",
        "a\x00b",
    ]:
        assert resolve_inside(out, bad) is None, bad


def test_spoken_override_is_read_by_every_run(tmp_path: Path) -> None:
    job_path = write_review_job(tmp_path)
    job = load_job(job_path)
    book = prepare_book(job)
    chunk = next(c for c in book.chunks if any(RARE_WORD in w.text for w in c.words))
    spoken = [w.spoken for w in chunk.words]
    k = next(i for i, w in enumerate(chunk.words) if RARE_WORD in w.text)
    spoken[k] = "bran knock"
    set_spoken_text(job, book, chunk.id, spoken)
    assert overrides_path(job_path).is_file()
    again = prepare_book(load_job(job_path))  # what `narrate run` does
    changed = [w for c in again.chunks for w in c.words if w.spoken != w.text]
    assert [(w.text, w.spoken) for w in changed] == [(chunk.words[k].text, "bran knock")]
    # the written text (subtitles, alignment) is untouched
    assert [c.text for c in again.chunks] == [c.text for c in book.chunks]
    with pytest.raises(ConfigError, match="spoken forms given"):
        set_spoken_text(job, book, chunk.id, spoken[:-1])


def test_stale_override_is_ignored(tmp_path: Path) -> None:
    job_path = write_review_job(tmp_path)
    overrides_path(job_path).write_text(
        "- {source: book.md, start: 3, text: Nothing, spoken: something}\n", encoding="utf-8"
    )
    book = prepare_book(load_job(job_path))
    assert all(w.spoken == w.text for c in book.chunks for w in c.words if not any(ch.isdigit() for ch in w.text))


def test_pronunciation_added_then_edited_keeps_the_file_valid(tmp_path: Path) -> None:
    job_path = write_review_job(tmp_path)
    job = load_job(job_path)
    set_pronunciation(job, RARE_WORD, "bran knock", None)
    text = (tmp_path / "lexicon.yaml").read_text(encoding="utf-8")
    assert text.startswith("# pronunciations")  # appended: the user's comment survives
    set_pronunciation(job, "ledger", "leh jer", None)
    set_pronunciation(job, RARE_WORD.lower(), "bran nock", None)  # an edit replaces the entry
    entries = load_lexicon_file(tmp_path / "lexicon.yaml")
    assert [(e.match, e.say) for e in entries] == [("ledger", "leh jer"), ("brannoch", "bran nock")]
    words = {w.text.strip("."): w.spoken for c in prepare_book(load_job(job_path)).chunks for w in c.words}
    assert words[RARE_WORD] == "bran nock"
    with pytest.raises(ConfigError, match="one written word"):
        set_pronunciation(job, "two words", "x", None)


def test_pronunciation_needs_a_lexicon_file(tmp_path: Path) -> None:
    job_path = write_review_job(tmp_path)
    job_path.write_text(job_path.read_text().replace("lexicon_file: lexicon.yaml", "normalize: true"))
    with pytest.raises(ConfigError, match=r"no text\.lexicon_file"):
        set_pronunciation(load_job(job_path), RARE_WORD, "x", None)


def test_peaks_follow_the_signal_and_are_cached(tmp_path: Path) -> None:
    rate = 16000
    x = np.zeros(rate * 4, dtype=np.float32)
    x[rate : rate + 400] = 0.5  # a burst at 1.0 s
    x[3 * rate] = -0.9  # a click at 3.0 s
    sf.write(tmp_path / "a.wav", x, rate)
    p = compute_peaks(tmp_path / "a.wav")
    n = len(p["max"])
    assert p["duration_ms"] == 4000 and n == 200
    assert int(np.argmax(p["max"])) == n // 4 and max(p["max"]) == 64
    assert int(np.argmin(p["min"])) == 3 * n // 4 and min(p["min"]) == -114
    cache = tmp_path / "peaks"
    assert cached_peaks(tmp_path / "a.wav", cache) == p
    entry = next(cache.iterdir())
    entry.write_text(entry.read_text().replace('"max": [', '"max": [99, '))  # a cached answer is used...
    assert cached_peaks(tmp_path / "a.wav", cache)["max"][0] == 99
    sf.write(tmp_path / "a.wav", x * 0.5, rate)  # ...until the file changes
    assert max(cached_peaks(tmp_path / "a.wav", cache)["max"]) == 32
