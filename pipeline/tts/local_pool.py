"""The local engine on every core: :func:`pipeline.tts.local.speak` in a pool of processes.

espeak-ng is process-global (one instance behind a lock, see espeak.py), so one process
speaks one chunk at a time and a long book on the plain LocalEngine uses one core however many
chunks are in flight. Here each chunk goes to one of ``processes`` worker processes, each with
its own espeak. The audio is identical to LocalEngine's (``speak`` is deterministic), and so is
the identity, so both engines share cache entries.

Workers are started with "spawn", not "fork": a forked child would inherit a copy of the
parent's loaded library, its lock (possibly held by another thread at that instant) and the
parent's atexit cleanup of espeak's voice overlay directory.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any

from pipeline.errors import EngineError, FatalEngineError
from pipeline.models import ChunkAudio
from pipeline.tts import espeak
from pipeline.tts.local import LocalEngine, speak


def default_processes() -> int:
    """The cores this process may run on (the affinity mask, which containers narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _check_voice(voice: str) -> str:
    return espeak.select_voice(voice)


class LocalPoolEngine:
    """Implements :class:`pipeline.tts.base.Engine` like LocalEngine, over ``processes``
    worker processes (default: one per available core). Keep at least ``processes`` chunks
    in flight (the synthesis fan-out's ``workers``), or some processes sit idle."""

    def __init__(
        self,
        *,
        voice: str,
        sample_rate: int,
        speed: float | None = None,
        language: str | None = None,
        processes: int | None = None,
    ) -> None:
        # The single-process engine validates the settings and defines the identity.
        self._single = LocalEngine(voice=voice, sample_rate=sample_rate, speed=speed, language=language)
        if processes is not None and processes < 1:
            raise ValueError("processes must be at least 1")
        self.processes = processes or default_processes()
        self._pool: ProcessPoolExecutor | None = None

    @property
    def voice(self) -> str:
        return self._single.voice

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=context)
        return self._pool

    async def _run(self, call: partial[Any], what: str) -> Any:
        """``call`` in a worker; errors come back as they would from LocalEngine, prefixed
        with ``what`` (the chunk)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor(), call)
        except BrokenProcessPool:
            # A worker was killed (out of memory, a signal): the pool cannot be used again.
            raise FatalEngineError(f"{what}: a local speech process died; rerun to resume") from None
        except EngineError as exc:
            raise type(exc)(f"{what}: {exc}") from exc

    async def synthesize(self, words: Sequence[str], *, chunk_id: str, need_timings: bool) -> ChunkAudio:
        # Timings cost almost nothing next to synthesis, so they are always computed.
        single = self._single
        call = partial(speak, list(words), voice=single.voice, sample_rate=single.sample_rate, speed=single.speed)
        audio: ChunkAudio = await self._run(call, f"chunk {chunk_id}")
        return audio

    async def check(self) -> None:
        """Starts every worker process and checks the voice in each, so that process start-up
        (about a second each) is paid here and not inside the first chunks."""
        call = partial(_check_voice, self._single.voice)
        await asyncio.gather(*(self._run(call, "local engine") for _ in range(self.processes)))

    def identity(self) -> dict[str, Any]:
        return self._single.identity()

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
