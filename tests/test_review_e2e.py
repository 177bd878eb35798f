"""`narrate review` over a real finished job: its JSON API, its security rules, and fixes that
re-render only what they touch (real local speech, the real server in a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.config import load_job
from pipeline.prepare import prepare_book
from pipeline.text.overrides import overrides_path
from tests.review_support import (  # noqa: F401  (fixtures)
    RARE_WORD,
    file_states,
    finished_job,
    job_copy,
    review_server,
    run_job,
    wait_for_fix,
)

pytestmark = pytest.mark.slow


class Client:
    def __init__(self, url: str) -> None:
        self.base, self.token = url.split("/?token=")
        self.http = httpx.Client(base_url=self.base, timeout=30)

    def get(self, path: str) -> Any:
        r = self.http.get(path)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
        return self.http.post(path, json=body, headers={"X-Narrate-Token": self.token if token is None else token})


def test_api_describes_the_job(finished_job: Path) -> None:  # noqa: F811
    book = prepare_book(load_job(finished_job))
    alignment = json.loads((finished_job.parent / "out" / "alignment.json").read_text())
    with review_server(finished_job) as url:
        c = Client(url)
        chapters = c.get("/api/chapters")
        assert [ch["title"] for ch in chapters["chapters"]] == ["The Ledger", "The Storm", "The Morning"]
        assert all(
            ch["loudness"]["integrated_lufs"] is not None and ch["duration_ms"] > 1000 for ch in chapters["chapters"]
        )
        one = c.get("/api/chapters/1")
        assert [w["text"] for w in one["words"]] == [w.text for ch in book.chunks_of(0) for w in ch.words]
        timed = alignment["chapters"][0]["words"]
        assert [(w["start_ms"], w["end_ms"]) for w in one["words"]] == [(w["start_ms"], w["end_ms"]) for w in timed]
        assert {w["chunk"] for w in one["words"]} == {ch.id for ch in book.chunks_of(0)}
        peaks = c.get("/api/chapters/1/peaks")
        assert peaks["duration_ms"] == one["duration_ms"] and max(peaks["max"]) > 20
        audio = one["audio_url"]
        whole = c.http.get(audio)
        part = c.http.get(audio, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == whole.content[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"


def test_security_rules(finished_job: Path) -> None:  # noqa: F811
    with review_server(finished_job) as url:
        c = Client(url)
        chunk = c.get("/api/chapters/1")["chunks"][1]["id"]
        assert c.post(f"/api/chunks/{chunk}/resynthesize", {}, token="").status_code == 403
        assert c.post(f"/api/chunks/{chunk}/resynthesize", {}, token="wrong").status_code == 403
        form = c.http.post(f"/api/chunks/{chunk}/resynthesize", data={"a": "b"}, headers={"X-Narrate-Token": c.token})
        assert form.status_code == 415  # a cross-site form post cannot set the content type
        assert c.http.get("/api/chapters", headers={"Host": "evil.example:80"}).status_code == 400
        for path in ["/audio/../ledger.yaml", "/audio/%2e%2e/ledger.yaml", "/audio/report.json", "/audio//etc/passwd"]:
            assert c.http.get(path).status_code == 404, path
        page = c.http.get("/")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert c.token not in page.text  # the page reads the token from its own URL only
        assert c.get("/api/jobs") == {"jobs": []}  # nothing was started by the refused posts


def test_resynthesize_one_chunk_rebuilds_its_chapter_only(job_copy: Path) -> None:  # noqa: F811
    out = job_copy.parent / "out"
    before = file_states(out)
    with review_server(job_copy) as url:
        c = Client(url)
        chunk = c.get("/api/chapters/2")["chunks"][1]["id"]
        r = c.post(f"/api/chunks/{chunk}/resynthesize", {})
        assert r.status_code == 202
        done = wait_for_fix(c.get, r.json()["id"])
    assert done["state"] == "done", done
    assert done["result"] == {"resynthesized": [chunk], "chapters_rebuilt": [2], "attempt_kept": {chunk: "new"}}
    after = file_states(out)
    changed = {p for p in before if before[p][1] != after[p][1]}
    assert {p for p in changed if p.startswith("chapters/")} == {p for p in before if p.startswith("chapters/02-")}
    assert list((out / ".narrate-review" / "attempts" / chunk).iterdir())  # the previous attempt is kept
    report = json.loads((out / "report.json").read_text())
    assert report["chunks_synthesized"] == 1 and report["review"]["chapters_kept"] == [1, 3]
    # the measured entries of the files left alone are still in the report
    assert sorted(a["path"] for a in report["outputs"]["audio"]) == sorted(p for p in before if p.endswith(".wav"))


def test_spoken_text_override_rebuilds_that_chunk(job_copy: Path) -> None:  # noqa: F811
    out = job_copy.parent / "out"
    before = file_states(out)
    with review_server(job_copy) as url:
        c = Client(url)
        chunk = c.get("/api/chapters/3")["chunks"][1]
        spoken = list(chunk["spoken"])
        spoken[1] = "evening"  # "In the morning" -> "In the evening"
        assert c.post(f"/api/chunks/{chunk['id']}/text", {"spoken": spoken[:-1]}).status_code == 400
        r = c.post(f"/api/chunks/{chunk['id']}/text", {"spoken": spoken})
        done = wait_for_fix(c.get, r.json()["id"])
        assert done["result"]["resynthesized"] == [chunk["id"]] and done["result"]["chapters_rebuilt"] == [3]
        word = c.get("/api/chapters/3")["words"]
        assert [w["spoken"] for w in word if w["chunk"] == chunk["id"]] == spoken
    assert "evening" in overrides_path(job_copy).read_text()
    assert (job_copy.parent / "book.md").read_text().count("evening") == 0  # never in the manuscript
    after = file_states(out)
    assert all(after[p] == before[p] for p in before if p.startswith(("chapters/01-", "chapters/02-")))
    assert after["chapters/03-the-morning.wav"][0] != before["chapters/03-the-morning.wav"][0]
    # `narrate run` reads the same override and, from the cache, writes the very same files.
    run_job(job_copy)
    rerun = file_states(out)
    assert {p: h for p, (h, _) in rerun.items()} == {p: h for p, (h, _) in after.items()}
    assert json.loads((out / "report.json").read_text())["chunks_synthesized"] == 0
