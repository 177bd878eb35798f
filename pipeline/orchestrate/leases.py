"""This process's slots on an account's shared concurrency limit (a Prefect GCL), lent to its
requests one at a time.

Why not one ``prefect.concurrency.asyncio.concurrency()`` per request: a denied client is told
to come back after the limit's average slot occupancy times the queue behind it (seconds,
while our requests take a fraction of one), and each process's attempts are serialized, so a
slot freed by one process sat idle until somebody's next attempt. Measured with two workers
on a 2-slot account: 0.5 requests per second. Here a slot that a request gives back goes
straight to the next request waiting in this process, for up to ``hold_s`` after it was
taken; then it goes back to the server so that processes take turns. One poller per process
asks the server for more while requests wait, at least every ``poll_s``.

A slot is a lease: a process that dies without returning its slots loses them when the lease
ends (``lease_s``), so a crash costs the others capacity for that long, never correctness.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from uuid import UUID

log = logging.getLogger(__name__)

HOLD_S = 5.0
POLL_S = 0.5
LEASE_S = 300.0


@dataclass(frozen=True, slots=True)
class Lease:
    id: UUID
    taken_at: float  # time.monotonic()


class SlotsUnavailable(Exception):
    """The server refused or could not be asked (not a plain "all slots busy")."""


class SharedSlots:
    def __init__(self, limit_name: str, *, hold_s: float = HOLD_S, poll_s: float = POLL_S, lease_s: float = LEASE_S):
        self.limit_name = limit_name
        self.hold_s = hold_s
        self.poll_s = poll_s
        self.lease_s = lease_s
        self._waiters: deque[asyncio.Future[Lease]] = deque()
        self._poller: asyncio.Task[None] | None = None
        self._returning: set[asyncio.Future[None]] = set()  # keeps those tasks alive until done

    async def acquire(self) -> Lease:
        waiter: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name=f"slots:{self.limit_name}")
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Granted just as we were cancelled: pass it on, or give it back.
                lease = waiter.result()
                if not self._hand_over(lease):
                    task = asyncio.ensure_future(self._return(lease))
                    self._returning.add(task)
                    task.add_done_callback(self._returning.discard)
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def release(self, lease: Lease) -> None:
        """Lend the slot to the next request waiting here, or give it back to the server."""
        if time.monotonic() - lease.taken_at < self.hold_s and self._hand_over(lease):
            return
        await self._return(lease)

    def _hand_over(self, lease: Lease) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(lease)
                return True
        return False

    async def _return(self, lease: Lease) -> None:
        from prefect.client.orchestration import get_client

        try:
            async with get_client() as client:
                await client.release_concurrency_slots_with_lease(lease.id)
        except Exception as exc:
            log.warning("could not return a shared slot (%s); it frees itself when its lease ends", exc)

    async def _poll(self) -> None:
        """Take slots from the server while requests here are waiting for one."""
        try:
            while True:
                if not any(not w.done() for w in self._waiters):
                    # Synchronously, before any await: a request arriving from now on starts
                    # a new poller instead of waiting on this one, which is leaving.
                    self._poller = None
                    return
                lease = await self._try_take()
                if lease is not None and not self._hand_over(lease):  # its waiter left meanwhile
                    await self._return(lease)
        except Exception as exc:
            self._poller = None
            error = SlotsUnavailable(f"{type(exc).__name__}: {exc}")
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(error)

    async def _try_take(self) -> Lease | None:
        import httpx
        from prefect.client.orchestration import get_client

        try:
            async with get_client() as client:
                response = await client.increment_concurrency_slots_with_lease(
                    names=[self.limit_name], slots=1, mode="concurrency", lease_duration=self.lease_s
                )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:  # 423 Locked: every slot is taken
                raise
            advised = float(exc.response.headers.get("Retry-After", self.poll_s))
            # Jitter, so that waiting processes do not ask in lockstep.
            await asyncio.sleep(min(advised, self.poll_s) * random.uniform(0.5, 1.0))
            return None
        body = response.json()
        if not body.get("limits"):
            raise SlotsUnavailable(f"the global concurrency limit {self.limit_name!r} does not exist")
        return Lease(UUID(body["lease_id"]), time.monotonic())
