"""The review page in a real headless browser (Playwright driving Debian's chromium): the DOM
contract, read-along, seeking, keyboard, flags, and a lexicon fix made from the page."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_job
from pipeline.prepare import prepare_book
from pipeline.text.normalize import split_punctuation
from tests.review_support import (  # noqa: F401  (fixtures)
    CHROMIUM,
    CHROMIUM_ARGS,
    RARE_WORD,
    file_states,
    finished_job,
    job_copy,
    review_server,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Not a skip: without the browser these tests must fail (`make test` installs chromium).
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (make test does it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp: Playwright evaluates wait_for_function strings with eval, which our CSP forbids
    context = browser.new_context(viewport={"width": 1280, "height": 820}, bypass_csp=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, errors


def open_page(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_function("document.getElementById('audio').readyState >= 1")


def current_time(page: Any) -> float:
    return float(page.evaluate("document.getElementById('audio').currentTime"))


def spoken_index(page: Any) -> int:
    return int(page.locator("#text .w[aria-current=true]").get_attribute("data-i"))


def test_click_a_word_seeks_to_it_and_play_moves_the_highlight(finished_job: Path, page: Any) -> None:  # noqa: F811
    alignment = json.loads((finished_job.parent / "out" / "alignment.json").read_text())
    with review_server(finished_job) as url:
        open_page(page, url)
        words = page.locator("#text .w")
        assert words.count() == len(alignment["chapters"][0]["words"])
        target = words.nth(9)
        start_ms = int(target.get_attribute("data-start-ms"))
        assert start_ms == alignment["chapters"][0]["words"][9]["start_ms"]
        assert target.get_attribute("data-chunk").startswith("c0000-")
        target.click()
        assert abs(current_time(page) - start_ms / 1000) < 0.02
        assert spoken_index(page) == 9
        page.locator("#text").click(position={"x": 1, "y": 1})  # focus off the word, keys go to the page
        page.keyboard.press("Space")
        page.wait_for_function("!document.getElementById('audio').paused")
        seen = [spoken_index(page)]
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and len(set(seen)) < 4:
            time.sleep(0.25)
            seen.append(spoken_index(page))
        assert seen == sorted(seen) and len(set(seen)) >= 4, seen  # forward, word after word
        assert current_time(page) > start_ms / 1000 + 0.5
        page.keyboard.press("Space")
        page.wait_for_function("document.getElementById('audio').paused")
        # -> jumps to the next sentence's first word
        sentence = int(page.locator("#text .w[aria-current=true]").get_attribute("data-sentence"))
        page.keyboard.press("ArrowRight")
        now = page.locator("#text .w[aria-current=true]")
        assert int(now.get_attribute("data-sentence")) == sentence + 1
        assert abs(current_time(page) - int(now.get_attribute("data-start-ms")) / 1000) < 0.02


def test_flags_are_listed_marked_and_reached_with_n(job_copy: Path, page: Any) -> None:  # noqa: F811
    # A failed chunk as report.json records one (pipeline/synthesis.py ChunkFailure.to_dict).
    report_path = job_copy.parent / "out" / "report.json"
    report = json.loads(report_path.read_text())
    book = prepare_book(load_job(job_copy))
    flagged = book.chunks_of(1)[1]
    report["failures"] = [
        {
            "chunk": flagged.id,
            "chapter": 2,
            "source": "book.md",
            "excerpt": flagged.text,
            "reason": "HTTP 500 after 6 retries",
        }
    ]
    report_path.write_text(json.dumps(report))
    with review_server(job_copy) as url:
        open_page(page, url)
        flag = page.locator("#flags [data-flag]")
        assert flag.count() == 1 and flag.get_attribute("data-chunk") == flagged.id
        assert flag.get_attribute("data-flag") == "failed"
        page.keyboard.press("n")
        page.wait_for_function("document.querySelector('#chapter-title').textContent.startsWith('2.')")
        page.wait_for_function("document.getElementById('audio').readyState >= 1")
        first = page.locator(f"#text .w[data-chunk='{flagged.id}']").first
        page.wait_for_function(
            "ms => Math.abs(document.getElementById('audio').currentTime * 1000 - ms) < 20",
            arg=int(first.get_attribute("data-start-ms")),
        )
        assert "flagged" in page.locator(f"#text .chunk[data-chunk='{flagged.id}']").get_attribute("class")
        assert page.locator("#chunk-id").text_content() == flagged.id


def test_lexicon_entry_from_the_page_resynthesizes_only_chunks_with_that_word(job_copy: Path, page: Any) -> None:  # noqa: F811
    book = prepare_book(load_job(job_copy))
    expected = [c.id for c in book.chunks if any(split_punctuation(w.text)[1] == RARE_WORD for w in c.words)]
    chapters_with_word = sorted({c.chapter + 1 for c in book.chunks if c.id in expected})
    assert len(expected) == 2 and chapters_with_word == [1, 3]
    out = job_copy.parent / "out"
    before = file_states(out)
    with review_server(job_copy) as url:
        open_page(page, url)
        page.locator("#text .w", has_text=RARE_WORD).first.click()
        page.fill("#lex-match", RARE_WORD)
        page.fill("#lex-say", "bran knock")
        page.click("#lexicon-form button[type=submit]")
        page.wait_for_function("document.body.dataset.lastJob", timeout=120_000)
        assert "done" in page.locator("#status").text_content()
        job = json.loads(page.evaluate("fetch('/api/jobs/' + document.body.dataset.lastJob).then(r => r.text())"))
        assert job["result"]["resynthesized"] == expected
        assert job["result"]["chapters_rebuilt"] == chapters_with_word
        respoken = page.locator("#text .w.respoken")
        assert respoken.count() == 1 and respoken.get_attribute("title") == "spoken: bran knock"
    after = file_states(out)
    changed = {p for p in before if before[p] != after[p]}
    chapter_files = {p for p in before if p.startswith("chapters/")}
    assert changed & chapter_files == {p for p in chapter_files if p.startswith(("chapters/01-", "chapters/03-"))}
    assert all(after[p] == before[p] for p in chapter_files if p.startswith("chapters/02-"))  # bytes and mtime
    assert after["the-small-ledger.wav"] != before["the-small-ledger.wav"]
    report = json.loads((out / "report.json").read_text())
    assert report["chunks_synthesized"] == len(expected)
    alignment = json.loads((out / "alignment.json").read_text())
    assert [len(ch["words"]) for ch in alignment["chapters"]] == [
        len([w for c in book.chunks_of(i) for w in c.words]) for i in range(3)
    ]
