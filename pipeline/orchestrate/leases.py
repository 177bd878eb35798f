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

A slot is a lease. A run that ends, fails or is cancelled gives its slots back at once
(``release`` runs in ``finally``; ``close`` returns whatever is still held). A process that
cannot (SIGKILL, a lost machine) must not cost the others capacity for long, but Prefect's
shortest lease is a minute and its repossessor looks every 15 s. So every process holding slots
also keeps a heartbeat on the server (a Prefect variable naming its leases, rewritten every
``HEARTBEAT_S``) and renews its leases while it lives; a process kept waiting for a slot looks
for heartbeats older than ``STALE_S`` and returns those dead holders' leases itself. A killed
holder's slots are back within ``STALE_S`` + ``HEARTBEAT_S`` + a poll: under 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

log = logging.getLogger(__name__)

HOLD_S = 5.0
POLL_S = 0.5
LEASE_S = 60.0  # the shortest lease Prefect grants
HEARTBEAT_S = 4.0
# A holder silent this long is dead. Far above any pause of a live event loop (the heartbeat
# is a plain task; synthesis work runs in threads), so a live holder is never robbed.
STALE_S = 20.0


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
        self._held: dict[UUID, Lease] = {}  # taken from the server and not given back yet
        self._keeper: asyncio.Task[None] | None = None
        self._heartbeat = _Heartbeat(limit_name)
        self._last_sweep = 0.0

    @property
    def held(self) -> int:
        return len(self._held)

    async def close(self) -> None:
        """Give every slot still held back to the server now (the end of a run)."""
        if self._keeper is not None:
            self._keeper.cancel()
            self._keeper = None
        for lease in list(self._held.values()):
            await self._return(lease)
        await self._heartbeat.clear()

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

        self._held.pop(lease.id, None)
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
            if time.monotonic() - self._last_sweep >= HEARTBEAT_S:
                self._last_sweep = time.monotonic()
                await self._heartbeat.reclaim_dead()
            # Jitter, so that waiting processes do not ask in lockstep.
            await asyncio.sleep(min(advised, self.poll_s) * random.uniform(0.5, 1.0))
            return None
        body = response.json()
        if not body.get("limits"):
            raise SlotsUnavailable(f"the global concurrency limit {self.limit_name!r} does not exist")
        lease = Lease(UUID(body["lease_id"]), time.monotonic())
        self._held[lease.id] = lease
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep_alive(), name=f"keep:{self.limit_name}")
        else:
            await self._heartbeat.beat(list(self._held))  # others must know this lease is ours
        return lease

    async def _keep_alive(self) -> None:
        """While slots are held: a heartbeat every HEARTBEAT_S, lease renewals every LEASE_S/3."""
        from prefect.client.orchestration import get_client

        renewed = time.monotonic()
        while self._held:
            await self._heartbeat.beat(list(self._held))
            if time.monotonic() - renewed >= self.lease_s / 3:
                renewed = time.monotonic()
                try:
                    async with get_client() as client:
                        for lease_id in list(self._held):
                            await client.renew_concurrency_lease(lease_id, lease_duration=self.lease_s)
                except Exception as exc:  # busy server, or a lease already gone: next round
                    log.warning("could not renew a shared slot's lease (%s)", exc)
            await asyncio.sleep(HEARTBEAT_S)
        await self._heartbeat.clear()
        self._keeper = None


class _Heartbeat:
    """This process's record of the leases it holds on one limit: a Prefect variable named
    ``narrate-slots-<limit digest>-<holder>`` whose value is ``{"leases": [...], "beat": t}``."""

    def __init__(self, limit_name: str) -> None:
        self.prefix = f"narrate-slots-{hashlib.sha256(limit_name.encode()).hexdigest()[:8]}-"
        self.name = self.prefix + uuid4().hex
        self._written = False

    async def beat(self, leases: list[UUID]) -> None:
        from prefect.client.orchestration import get_client

        body = {"name": self.name, "value": {"leases": [str(x) for x in leases], "beat": time.time()}}
        try:
            async with get_client() as client:
                if self._written:
                    await client.request("PATCH", "/variables/name/{name}", path_params={"name": self.name}, json=body)
                else:
                    await client.request("POST", "/variables/", json=body)
                    self._written = True
        except Exception as exc:
            log.warning("could not record this process's shared slots (%s)", exc)

    async def clear(self) -> None:
        if not self._written:
            return
        from prefect.client.orchestration import get_client

        self._written = False
        try:
            async with get_client() as client:
                await client.request("DELETE", "/variables/name/{name}", path_params={"name": self.name})
        except Exception as exc:
            log.warning("could not clear this process's shared slot record (%s)", exc)

    async def reclaim_dead(self) -> None:
        """Return the leases of holders whose heartbeat stopped (killed without a goodbye)."""
        from prefect.client.orchestration import get_client

        try:
            async with get_client() as client:
                response = await client.request(
                    "POST", "/variables/filter", json={"variables": {"name": {"like_": self.prefix}}, "limit": 200}
                )
                for record in response.json():
                    if record["name"] != self.name and _stale(record.get("value")):
                        for lease_id in record["value"].get("leases", []):
                            with contextlib.suppress(Exception):  # expired or returned meanwhile
                                await client.release_concurrency_slots_with_lease(UUID(lease_id))
                        await client.request("DELETE", "/variables/name/{name}", path_params={"name": record["name"]})
                        log.warning("returned the shared slots of a process that stopped without returning them")
        except Exception as exc:
            log.warning("could not look for abandoned shared slots (%s)", exc)


def _stale(value: Any) -> bool:
    return isinstance(value, dict) and time.time() - float(value.get("beat", 0)) > STALE_S
