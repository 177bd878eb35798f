"""`narrate review JOB.yaml`: check the job, bind the loopback, print the page's URL, serve."""

from __future__ import annotations

import secrets
import socket
import sys
import webbrowser
from pathlib import Path

import uvicorn

from pipeline.config import load_job
from pipeline.errors import ConfigError, OutputError
from pipeline.review.app import build_app

HOST = "127.0.0.1"


def serve(job_path: str, *, port: int, open_browser: bool) -> int:
    job = load_job(job_path)
    out = job.output_dir
    if not (out / "report.json").is_file() and not (out / "alignment.json").is_file():
        raise ConfigError(f"{job.path}: no outputs to review in {out}; run `narrate run {job_path}` first")
    token = secrets.token_urlsafe(24)
    app = build_app(Path(job_path), token)  # prepares the book: a bad manuscript fails here
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise OutputError(f"--port {port}: cannot listen on {HOST}:{port}: {exc.strerror}") from None
    sock.listen(64)
    url = f"http://{HOST}:{sock.getsockname()[1]}/?token={token}"
    print(f"review {job.config.name}: {url}", flush=True)
    print("  (the token in the URL is what lets this page change the job; Ctrl-C stops)", file=sys.stderr)
    if open_browser:
        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    server.run(sockets=[sock])
    return 0
