"""OtaService: what the Slack side calls. Coalesces identical concurrent reads into one
upstream call and keeps each read fresh for a few seconds, so a channel full of people
typing the same JobId costs one call of the account's quota."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from .client import IotClient
from .models import JobResult, TaskCounts
from .quota import Priority

T = TypeVar("T")


class CoalescingCache(Generic[T]):
    """In-flight coalescing plus a short time-to-live cache. Errors are not cached."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._fresh: dict[Hashable, tuple[float, T]] = {}
        self._inflight: dict[Hashable, asyncio.Task[T]] = {}

    async def get(
        self,
        key: Hashable,
        load: Callable[[], Awaitable[T]],
        *,
        fresh: bool = False,
        lane: Hashable = None,
    ) -> T:
        """``lane`` keeps reads of different priorities apart in flight, so a person
        never waits in line behind a background read of the same thing."""
        now = self._clock()
        if not fresh and key in self._fresh:
            stored_at, value = self._fresh[key]
            if now - stored_at < self.ttl:
                return value
        flight = (key, lane)
        task = self._inflight.get(flight)
        if task is None:
            task = asyncio.ensure_future(self._load(key, flight, load))
            self._inflight[flight] = task
        # One impatient caller going away must not cancel the call the others wait for.
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, flight: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await load()
            now = self._clock()
            self._fresh = {k: v for k, v in self._fresh.items() if now - v[0] < self.ttl}
            self._fresh[key] = (now, value)
            return value
        finally:
            del self._inflight[flight]


class OtaService:
    def __init__(
        self,
        client: IotClient,
        *,
        cache_seconds: float = 5.0,
        default_instance_id: str | None = None,
    ) -> None:
        self.client = client
        self.default_instance_id = default_instance_id
        self._jobs: CoalescingCache[JobResult] = CoalescingCache(cache_seconds)
        self._counts: CoalescingCache[TaskCounts] = CoalescingCache(cache_seconds)

    def instance_for(self, instance_id: str | None) -> str | None:
        """The instance a call goes to: the one named, else the configured default."""
        return instance_id or self.default_instance_id

    async def get_job(
        self,
        job_id: str,
        instance_id: str | None = None,
        *,
        fresh: bool = False,
        priority: Priority = Priority.PERSON,
    ) -> JobResult:
        instance = self.instance_for(instance_id)
        return await self._jobs.get(
            ("QueryOTAJob", job_id, instance),
            lambda: self.client.query_ota_job(job_id, instance_id=instance, priority=priority),
            fresh=fresh,
            lane=priority,
        )

    async def count_tasks(
        self,
        job_id: str,
        instance_id: str | None = None,
        *,
        fresh: bool = False,
        priority: Priority = Priority.PERSON,
    ) -> TaskCounts:
        instance = self.instance_for(instance_id)
        return await self._counts.get(
            ("ListOTATaskByJob", job_id, instance),
            lambda: self.client.count_tasks(job_id, instance_id=instance, priority=priority),
            fresh=fresh,
            lane=priority,
        )
