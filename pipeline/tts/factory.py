"""Choose and build the engine a job asks for."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from pipeline.config import JobConfig
from pipeline.tts.base import Engine

WS_WORKERS = 100_000


def needs_timings(cfg: JobConfig) -> bool:
    """Word timings cost the timestamp endpoint; ask for them only when an output uses them."""
    out = cfg.outputs
    return bool(out.subtitles or out.alignment or out.dataset is not None or out.media_overlays)


# Below this many chunks, starting the local engine's worker processes (about a second, paid in
# parallel) costs more than speaking the chunks on one core saves.
POOL_MIN_CHUNKS = 150


def make_engine(
    cfg: JobConfig,
    *,
    request_gate: Callable[[], AbstractAsyncContextManager[object]] | None = None,
    chunks: int = 0,
) -> Engine:
    """``request_gate``: see AsyncFlowEngine (limits shared across processes); the local engine has none.
    ``chunks``: how many the run will speak; a local run of at least POOL_MIN_CHUNKS speaks on
    every core (LocalPoolEngine: the same audio and cache identity as LocalEngine)."""
    e = cfg.engine
    if e.kind == "local":
        from pipeline.tts.local import LocalEngine
        from pipeline.tts.local_pool import LocalPoolEngine, default_processes

        if chunks >= POOL_MIN_CHUNKS and default_processes() > 1:
            return LocalPoolEngine(voice=e.voice, sample_rate=e.sample_rate, speed=e.speed, language=e.language)
        return LocalEngine(voice=e.voice, sample_rate=e.sample_rate, speed=e.speed, language=e.language)
    if e.kind == "piper":
        from pipeline.tts.piper import PiperEngine

        return PiperEngine(
            voice=e.voice, sample_rate=e.sample_rate, speed=e.speed, speaker=e.speaker, threads=e.threads
        )
    from pipeline.tts.asyncflow import AsyncFlowEngine, api_key_from_env

    if e.transport == "websocket":
        from pipeline.tts.ws_engine import WebSocketEngine

        return WebSocketEngine(engine=e, limits=cfg.limits, api_key=api_key_from_env(e), request_gate=request_gate)
    return AsyncFlowEngine(engine=e, limits=cfg.limits, api_key=api_key_from_env(e), request_gate=request_gate)


def worker_count(cfg: JobConfig) -> int:
    """Requests kept in flight. The engine's limiter enforces the real caps; the local engine
    speaks one chunk at a time per process, so two workers per process overlap cache I/O with
    speech."""
    if cfg.engine.kind == "piper":  # one chunk per core on the shared onnxruntime session
        from pipeline.tts.local_pool import default_processes

        return cfg.engine.threads or default_processes()
    if cfg.engine.kind == "asyncflow" and cfg.engine.transport == "websocket":
        # Every chunk is asked for at once: the engine groups them into chapter streams and
        # opens at most max_concurrency sockets itself.
        return WS_WORKERS
    if cfg.engine.kind == "local":  # two per process: each has its next chunk ready (the pool)
        from pipeline.tts.local_pool import default_processes

        return 2 * default_processes()
    return cfg.limits.max_concurrency
