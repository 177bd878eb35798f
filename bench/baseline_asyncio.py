"""The baseline: the script a user might write by hand instead of using narrate.

One httpx.AsyncClient, a fixed number of requests in flight (a semaphore), every request body
posted once, and a 429 answered by waiting what the server asks (``retry_after_ms``, else the
Retry-After header) and trying again, because without that the script would not finish under
a per-minute limit. Nothing else: no pacing, no cache, no decoding, no files. It deliberately
imports nothing from narrate.

    ASYNCAI_API_KEY=... python bench/baseline_asyncio.py REQUESTS.json --base-url URL --concurrency 5

REQUESTS.json is ``{"path": "/text_to_speech/with_timestamps", "bodies": [{...}, ...]}``
(the benchmarks write it from the same chunks narrate sends). Prints one JSON line:
``{"requests", "ok", "status_429", "wall_s"}``; exits 1 if any request failed otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import httpx


def retry_after_s(response: httpx.Response) -> float:
    try:
        body = response.json()
        detail = body.get("detail", body) if isinstance(body, dict) else {}
        return float(detail["extra"]["retry_after_ms"]) / 1000
    except (ValueError, KeyError, TypeError):
        pass
    try:
        return float(response.headers.get("retry-after", "1"))
    except ValueError:
        return 1.0


async def run(base_url: str, path: str, bodies: list[dict[str, Any]], concurrency: int, key: str) -> dict[str, Any]:
    counts = {"requests": 0, "ok": 0, "status_429": 0}
    failures: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    headers = {"x-api-key": key, "version": "v1"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60) as client:

        async def one(body: dict[str, Any]) -> None:
            while True:
                async with gate:
                    counts["requests"] += 1
                    response = await client.post(path, json=body)
                if response.status_code == 200:
                    counts["ok"] += 1
                    return
                if response.status_code != 429:
                    failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    return
                counts["status_429"] += 1
                await asyncio.sleep(retry_after_s(response))

        started = time.perf_counter()
        await asyncio.gather(*(one(body) for body in bodies))
        wall = time.perf_counter() - started
    if failures:
        print(f"baseline: {len(failures)} request(s) failed; first: {failures[0]}", file=sys.stderr)
    return {**counts, "failed": len(failures), "wall_s": round(wall, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description="A hand-written asyncio + httpx client: the baseline.")
    parser.add_argument("requests_file")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--api-key-env", default="ASYNCAI_API_KEY")
    args = parser.parse_args()
    with open(args.requests_file, encoding="utf-8") as f:
        plan = json.load(f)
    key = os.environ.get(args.api_key_env, "")
    result = asyncio.run(run(args.base_url, plan["path"], plan["bodies"], args.concurrency, key))
    print(json.dumps(result))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
