"""The account's API quota, enforced on our side.

The gateway allows QueryOTAJob 10 calls per second per account, shared by every RAM user
and every other tool the customer runs, and does not document its window. So we never
send more than ``limit`` calls in any sliding window of ``window`` seconds (plus a small
margin for network jitter between our clock and the gateway's), and people's queries go
ahead of background work. aiolimiter's leaky bucket allows a burst on top of the rate
within one second and has no priorities, hence this small scheduler.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum


class Priority(IntEnum):
    PERSON = 0  # someone is waiting in Slack
    BACKGROUND = 1  # watchers, prefetches


class SlidingWindowLimiter:
    def __init__(
        self,
        limit: int,
        window: float = 1.0,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.span = window + margin
        self._clock = clock
        self._sent: deque[float] = deque()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._pump: asyncio.Task[None] | None = None

    def _free_slots(self, now: float) -> int:
        while self._sent and self._sent[0] <= now - self.span:
            self._sent.popleft()
        return self.limit - len(self._sent)

    async def acquire(self, priority: Priority = Priority.PERSON) -> None:
        """Wait until a call may be sent now; the slot is taken when this returns."""
        now = self._clock()
        if not self._waiters and self._free_slots(now) > 0:
            self._sent.append(now)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._seq), future))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._release_waiters())
        await future

    async def _release_waiters(self) -> None:
        while self._waiters:
            now = self._clock()
            if self._free_slots(now) > 0:
                _, _, future = heapq.heappop(self._waiters)
                if not future.done():  # a cancelled waiter gives its turn away
                    self._sent.append(now)
                    future.set_result(None)
                continue
            await asyncio.sleep(max(self._sent[0] + self.span - now, 0.001))


class QuotaLimiters:
    """One limiter per AccessKeyId: the quota belongs to the account behind the key."""

    def __init__(self, limit: int, window: float = 1.0, margin: float = 0.05) -> None:
        self._make = lambda: SlidingWindowLimiter(limit, window, margin)
        self._by_key: dict[str, SlidingWindowLimiter] = {}

    def for_key(self, access_key_id: str) -> SlidingWindowLimiter:
        if access_key_id not in self._by_key:
            self._by_key[access_key_id] = self._make()
        return self._by_key[access_key_id]
