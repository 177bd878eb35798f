"""One process for tests/test_workers.py that takes N slots of a shared concurrency limit.

    python -m tests.slot_holder LIMIT_NAME N hold|close

Prints one JSON line once it holds them (``acquired_at``: wall clock). ``hold`` then keeps
them until killed (its leases are renewed while it lives); ``close`` gives them back through
``SharedSlots.close`` and exits, as a run that ends does.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from pipeline.orchestrate.leases import SharedSlots


async def main(name: str, n: int, mode: str) -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(name, n)
    slots = SharedSlots(name)
    started = time.time()
    for _ in range(n):
        await slots.acquire()
    print(json.dumps({"acquired_at": time.time(), "waited_s": time.time() - started}), flush=True)
    if mode == "hold":
        await asyncio.sleep(3600)
    await slots.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
