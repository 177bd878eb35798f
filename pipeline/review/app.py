"""The review page's ASGI app: the page itself, the job's audio, and the JSON API it uses.

Security rules (README, "narrate review"): the server binds 127.0.0.1; the Host header must name
the loopback (a DNS-rebinding page gets nothing); every file served is resolved inside the job's
output folder and must be an audio or subtitle file there (no ``..``, no symlink out, no hidden
folders); every POST carries the per-launch token in ``X-Narrate-Token`` and a JSON body, which
a page of another origin cannot send without a CORS preflight that this server never answers.
Nothing sent to the browser comes from the environment, so the API key never reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from pipeline.config import LexiconEntry, load_job
from pipeline.errors import ConfigError, NarrateError
from pipeline.prepare import prepare_book
from pipeline.review import fixes
from pipeline.review.jobs import FixQueue
from pipeline.review.peaks import cached_peaks
from pipeline.review.rebuild import STATE_DIR, RebuildOutcome, Step, rebuild
from pipeline.review.view import JobView

SERVED_SUFFIXES = {".wav", ".flac", ".mp3", ".opus", ".m4b", ".srt", ".vtt"}
STATIC = {"index.html": "text/html", "review.js": "text/javascript", "review.css": "text/css"}
TOKEN_HEADER = "x-narrate-token"
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
}


def resolve_inside(root: Path, relative: str) -> Path | None:
    """``relative`` as a file inside ``root``, or None when it leads anywhere else."""
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    parts = Path(relative).parts
    if any(p in {"..", ""} or p.startswith(".") for p in parts):
        return None
    base = root.resolve()
    target = (base / relative).resolve()  # follows symlinks: one pointing out fails below
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


class Review:
    """The state behind the app: the job, its prepared book and the view of its outputs."""

    def __init__(self, job_path: Path, token: str) -> None:
        self.job_path = job_path
        self.token = token
        self.fixes = FixQueue(on_done=self.refresh)
        self.view = self._load()

    def _load(self) -> JobView:
        job = load_job(self.job_path)
        return JobView.load(job, prepare_book(job))

    async def refresh(self) -> None:
        # A broken job file: keep showing what was there; the next fix reports it.
        with contextlib.suppress(NarrateError):
            self.view = await asyncio.to_thread(self._load)

    @property
    def out(self) -> Path:
        return self.view.job.output_dir


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=_HEADERS)


def _error(message: str, status: int) -> JSONResponse:
    return _json({"error": message}, status)


def build_app(job_path: Path, token: str | None = None) -> Starlette:
    review = Review(job_path, token or secrets.token_urlsafe(24))

    async def page(request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        if name not in STATIC:
            return _error("not found", 404)
        body = resources.files("pipeline.review").joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC[name], headers=_HEADERS)

    async def chapters(request: Request) -> Response:
        v = review.view
        return _json(
            {
                "job": v.job.config.name,
                "title": v.book.title,
                "author": v.book.author,
                "chapters": v.chapters(),
                "flags": v.flags(),
                "busy": review.fixes.busy(),
            }
        )

    def chapter_number(request: Request) -> int | None:
        try:
            return int(request.path_params["n"])
        except ValueError:
            return None

    async def chapter(request: Request) -> Response:
        n = chapter_number(request)
        data = review.view.chapter(n) if n is not None else None
        return _json(data) if data is not None else _error("no such chapter", 404)

    async def peaks(request: Request) -> Response:
        n = chapter_number(request)
        audio = review.view.audio_file(n - 1) if n is not None and 1 <= n <= len(review.view.book.chapters) else None
        path = resolve_inside(review.out, audio) if audio else None
        if path is None:
            return _error("this chapter has no audio file yet", 404)
        data = await asyncio.to_thread(cached_peaks, path, review.out / STATE_DIR / "peaks")
        return _json(data)

    async def audio(request: Request) -> Response:
        relative = request.path_params["path"]
        path = resolve_inside(review.out, relative)
        if path is None or path.suffix.lower() not in SERVED_SUFFIXES:
            return _error("not found", 404)
        # Starlette answers Range requests (206, Content-Range), which is what lets <audio> seek.
        return FileResponse(path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    async def posted(request: Request) -> dict[str, Any] | Response:
        """The JSON body of an authorized POST, or the error response."""
        sent = request.headers.get(TOKEN_HEADER, "")
        if not secrets.compare_digest(sent.encode(), review.token.encode()):
            return _error("missing or wrong review token (use the URL `narrate review` printed)", 403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error("send a JSON body (Content-Type: application/json)", 415)
        try:
            body = await request.json()
        except ValueError:
            return _error("the body is not valid JSON", 400)
        return body if isinstance(body, dict) else _error("the body must be a JSON object", 400)

    def chunk_or_none(request: Request) -> str | None:
        chunk_id = request.path_params["chunk"]
        return chunk_id if any(c.id == chunk_id for c in review.view.book.chunks) else None

    def accepted(kind: str, target: str, work: Any) -> Response:
        job = review.fixes.submit(kind, target, work)
        return _json(dict(job.to_dict(), url=f"/api/jobs/{job.id}"), 202)

    async def resynthesize(request: Request) -> Response:
        body = await posted(request)
        if isinstance(body, Response):
            return body
        chunk_id = chunk_or_none(request)
        if chunk_id is None:
            return _error("no such chunk", 404)

        async def work(step: Step) -> RebuildOutcome:
            return await rebuild(job_path, new_attempts=[chunk_id], progress=step)

        return accepted("resynthesize", chunk_id, work)

    async def lexicon(request: Request) -> Response:
        body = await posted(request)
        if isinstance(body, Response):
            return body
        match, say, phonemes = (body.get(k) for k in ("match", "say", "phonemes"))
        if not isinstance(match, str) or not all(v is None or isinstance(v, str) for v in (say, phonemes)):
            return _error("give 'match' and 'say' (or 'phonemes') as strings", 400)
        try:  # the quick checks now, so a mistake is an answer and not a failed job
            fixes.lexicon_file(review.view.job)
            LexiconEntry.model_validate(
                {k: v for k, v in {"match": match, "say": say, "phonemes": phonemes}.items() if v}
            )
        except ConfigError as exc:
            return _error(str(exc), 409)
        except ValueError as exc:
            return _error(f"lexicon entry: {exc}", 400)

        async def work(step: Step) -> RebuildOutcome:
            job = load_job(job_path)
            before = await asyncio.to_thread(prepare_book, job)
            fixes.set_pronunciation(job, match, say, phonemes)
            return await rebuild(job_path, before=before, progress=step)

        return accepted("lexicon", match, work)

    async def spoken_text(request: Request) -> Response:
        body = await posted(request)
        if isinstance(body, Response):
            return body
        chunk_id = chunk_or_none(request)
        if chunk_id is None:
            return _error("no such chunk", 404)
        spoken = body.get("spoken")
        if not isinstance(spoken, list) or not all(isinstance(s, str) and s.strip() for s in spoken):
            return _error("give 'spoken': one non-empty spoken form per written word of the chunk", 400)
        words = next(c for c in review.view.book.chunks if c.id == chunk_id).words
        if len(spoken) != len(words):
            return _error(f"chunk {chunk_id} has {len(words)} words; {len(spoken)} spoken forms given", 400)

        async def work(step: Step) -> RebuildOutcome:
            job = load_job(job_path)
            before = await asyncio.to_thread(prepare_book, job)
            fixes.set_spoken_text(job, before, chunk_id, spoken)
            return await rebuild(job_path, before=before, progress=step)

        return accepted("text", chunk_id, work)

    async def job_status(request: Request) -> Response:
        try:
            job = review.fixes.jobs.get(int(request.path_params["id"]))
        except ValueError:
            job = None
        return _json(job.to_dict()) if job else _error("no such job", 404)

    async def jobs(request: Request) -> Response:
        return _json({"jobs": [j.to_dict() for j in review.fixes.jobs.values()]})

    routes = [
        Route("/", page),
        Route("/static/{name}", page),
        Route("/api/chapters", chapters),
        Route("/api/chapters/{n}", chapter),
        Route("/api/chapters/{n}/peaks", peaks),
        Route("/api/chunks/{chunk}/resynthesize", resynthesize, methods=["POST"]),
        Route("/api/chunks/{chunk}/text", spoken_text, methods=["POST"]),
        Route("/api/lexicon", lexicon, methods=["POST"]),
        Route("/api/jobs", jobs),
        Route("/api/jobs/{id}", job_status),
        Route("/audio/{path:path}", audio),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])],
    )
    app.state.review = review
    return app
