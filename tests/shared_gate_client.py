"""One client process for tests/test_workers.py: the real AsyncFlow engine behind the shared
Prefect gate, sending N synthesis requests to an emulator as fast as its own limits allow.

    python -m tests.shared_gate_client BASE_URL API_KEY N RPM CONCURRENCY WINDOW_S

Prints one JSON line: when each request finished (wall clock) and what failed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from pipeline.config import EngineConfig, LimitsConfig
from pipeline.errors import EngineError
from pipeline.orchestrate.shared_limits import AccountLimits, SharedRequestGate, ensure_account_limits
from pipeline.tts.asyncflow import AsyncFlowEngine

VOICE = "e0f39dc4-f691-4e78-bba5-5c636692cc04"


async def main(base_url: str, key: str, n: int, rpm: int, concurrency: int, window_s: float) -> dict[str, object]:
    shared = AccountLimits("gate-test", rpm, concurrency, window_s=window_s)
    await ensure_account_limits(shared)
    engine = AsyncFlowEngine(
        engine=EngineConfig(kind="asyncflow", base_url=base_url, voice=VOICE, sample_rate=16000),
        # This process alone may go far faster than the account allows: only the shared gate
        # can keep the two processes under the account's limits. No retries: a 429 is a failure.
        limits=LimitsConfig(requests_per_minute=6000, max_concurrency=4, retries=0, timeout_s=30),
        api_key=key,
        request_gate=SharedRequestGate(shared),
    )
    finished: list[float] = []
    failures: list[str] = []

    async def one(i: int) -> None:
        try:
            await engine.synthesize(["Signal", f"number {i}."], chunk_id=f"r{i}", need_timings=False)
            finished.append(time.time())
        except EngineError as exc:
            failures.append(str(exc))

    try:
        await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        await engine.aclose()
    return {"finished": sorted(finished), "failures": failures}


if __name__ == "__main__":
    url, api_key, count, limit_rpm, limit_conc, window = sys.argv[1:7]
    result = asyncio.run(main(url, api_key, int(count), int(limit_rpm), int(limit_conc), float(window)))
    print(json.dumps(result), flush=True)
