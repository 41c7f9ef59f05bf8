"""The poll loop: starts each job's poll when it is due, a few at a time, and stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..db import ACTIVE, Store
from ..iot.errors import IotError, error_kind
from ..iot.quota import Priority
from ..iot.service import OtaService
from .budget import Budget, WatchSettings
from .lifecycle import Lifecycle
from .live import FIRST_IN_LINE_SECONDS

log = logging.getLogger("otajob.watch")


@dataclass(frozen=True)
class Claim:
    """A poll taken until ``until`` (the clock's seconds), for ``lease`` seconds at a time."""

    key: tuple[str, str | None]
    until: float
    lease: float


class Scheduler:
    """Due polls, claimed with a lease, at most two seconds' worth in flight."""

    def __init__(
        self,
        store: Store,
        service: OtaService,
        lifecycle: Lifecycle,
        budget: Budget,
        settings: WatchSettings,
        wake: asyncio.Event,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.service = service
        self.lifecycle = lifecycle
        self.budget = budget
        self.settings = settings
        self._clock = clock
        self._inflight: dict[tuple[str, str | None], asyncio.Task[None]] = {}
        self._reading: set[tuple[str, str | None]] = set()  # in flight, before the answer
        # Jobs a pushed message named while their poll was under way: that poll may have
        # read the batch before the change, so it is polled once more when it ends.
        self._again: set[str] = set()
        self._again_tasks: set[asyncio.Task[int]] = set()
        self._stopping = asyncio.Event()
        self._wake = wake
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        """Stop polling; let polls (and their posts) under way finish, within a bound."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._inflight:
            _, late = await asyncio.wait(
                list(self._inflight.values()), timeout=self.settings.shutdown_seconds
            )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def run(self) -> None:
        while not self._stopping.is_set():
            delay = 1.0
            try:
                await self.tick()
                if self._has_room():
                    next_due = await self.store.next_due()
                    if next_due is not None:
                        delay = min(max(next_due - self._clock(), 0.05), 1.0)
            except Exception:  # the loop must outlive any one bad tick (a database hiccup)
                log.exception("watcher tick failed")
            # Woken early when a poll finishes (room for the next) or a watch is added.
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _room(self) -> int:
        """Polls that may start now: at most two seconds' worth reading the batch, so a
        backlog (after a restart, say) drains in order instead of piling up in the
        limiter. A poll that has read its batch and waits on Slack (a rate-limited card
        edit, chat.update being Tier 3) no longer counts: it must not hold back the next
        batch's poll, a pushed completion's say."""
        return max(1, int(self.settings.budget_per_second * 2)) - len(self._reading)

    def _has_room(self) -> bool:
        return self._room() > 0

    async def tick(self) -> list[asyncio.Task[None]]:
        """Start the polls that are due; returns their tasks (tests await them)."""
        room = self._room()
        started: list[asyncio.Task[None]] = []
        if room <= 0:
            return started
        now = self._clock()
        await self.budget.count_jobs()
        await self.lifecycle.expire(now)
        lease = self.budget.lease()
        for poll in await self.store.due_polls(now, room):
            key = (poll.job_id, poll.instance_id)
            if key in self._inflight or not await self.store.claim_poll(poll, now, lease):
                continue
            task = asyncio.create_task(self._poll(Claim(key, now + lease, lease), poll.errors))
            self._inflight[key] = task
            self._reading.add(key)
            task.add_done_callback(lambda _, key=key: self._poll_done(key))
            started.append(task)
        return started

    def _poll_done(self, key: tuple[str, str | None]) -> None:
        self._inflight.pop(key, None)
        self._reading.discard(key)
        if key[0] in self._again:
            self._again.discard(key[0])
            again_at = self._clock() - FIRST_IN_LINE_SECONDS
            task = asyncio.create_task(self.store.poll_soon(key[0], again_at))
            self._again_tasks.add(task)
            task.add_done_callback(self._again_done)
        self._wake.set()

    def _again_done(self, task: asyncio.Task[int]) -> None:
        self._again_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("scheduling a pushed batch's poll again failed", exc_info=task.exception())
        self._wake.set()

    def pushed(self, job_id: str) -> None:
        """A pushed message named `job_id` (its poll row is already due now)."""
        if any(key[0] == job_id for key in self._inflight):
            self._again.add(job_id)

    async def _poll(self, claim: Claim, errors: int) -> None:
        job_id, instance_id = claim.key
        keeping = asyncio.create_task(self._keep(claim))
        try:
            await self.poll(job_id, instance_id, errors)
        except Exception:
            log.exception("poll of %s failed", job_id, extra={"job_id": job_id})
            with contextlib.suppress(Exception):
                await self.budget.record_error(job_id, instance_id, errors)
        finally:
            keeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeping

    async def _keep(self, claim: Claim) -> None:
        """Renew the claim every third of its lease while the poll runs: only a poller
        that died lets it run out (then another replica takes the poll over)."""
        until = claim.until
        while True:
            await asyncio.sleep(claim.lease / 3)
            renewed = self._clock() + claim.lease
            try:
                if not await self.store.extend_claim(*claim.key, until, renewed):
                    return  # the poll recorded its next time, or a push asked for one
            except Exception:
                log.warning("renewing the claim of %s failed", claim.key[0], exc_info=True)
                continue
            until = renewed

    async def poll(self, job_id: str, instance_id: str | None, errors: int = 0) -> None:
        if not await self.store.live_watches(job_id=job_id, instance_id=instance_id, state=ACTIVE):
            return
        try:
            result = await self.service.get_job(
                job_id, instance_id, fresh=True, priority=Priority.BACKGROUND
            )
        except IotError as exc:
            self._read(job_id, instance_id)
            async with self.lifecycle.lock(job_id, instance_id):
                await self._poll_failed(job_id, instance_id, errors, exc)
            return
        self._read(job_id, instance_id)
        async with self.lifecycle.lock(job_id, instance_id):
            await self.lifecycle.advance(job_id, instance_id, result)
            await self.budget.record(job_id, instance_id, result)

    def _read(self, job_id: str, instance_id: str | None) -> None:
        """The batch is read: room for the next poll (this one may still post)."""
        key = (job_id, instance_id)
        if key in self._reading:
            self._reading.discard(key)
            self._wake.set()

    async def _poll_failed(
        self, job_id: str, instance_id: str | None, errors: int, exc: IotError
    ) -> None:
        if error_kind(exc) == "not_found":
            await self.lifecycle.job_gone(job_id, instance_id, exc)
            return
        # A passing problem on Alibaba Cloud's side: no noise in the channel.
        log.warning(
            "poll of %s failed (%d in a row): %s", job_id, errors + 1, exc, extra={"job_id": job_id}
        )
        await self.budget.record_error(job_id, instance_id, errors)
