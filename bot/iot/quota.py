"""The account's API quota, enforced on our side.

The gateway allows QueryOTAJob 10 calls per second per account, shared by every RAM user
and every other tool the customer runs, and does not document its window. It counts a
call when the call *arrives*, which we cannot see: only that it arrived after we sent it
and before its answer came back. So a call holds its place in our window from the moment
it is let go until one window after its answer, or, if the answer is slow, until one
window after ``arrival_bound`` seconds past its start (by then it has surely arrived).
Counting from the release alone is not enough: a stalled event loop or a slow network
can make a batch arrive late and overlap the next one at the gateway.

People's queries go ahead of background work, and background work (watchers) may use at
most ``background_limit`` of the places, so a person never waits behind a full window of
polls. aiolimiter's leaky bucket lets a burst
through on top of the rate within one second and has no priorities, hence this scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import IntEnum


class Priority(IntEnum):
    PERSON = 0  # someone is waiting in Slack
    BACKGROUND = 1  # watchers, prefetches
    # Watchers' device summaries (seven calls each): behind every poll, so a batch that
    # finishes is read, and its reply posted, before earlier batches' summaries are done.
    SUMMARY = 2


@dataclass
class Slot:
    expires: float  # when this call stops counting against the window
    priority: Priority = Priority.PERSON


class SlidingWindowLimiter:
    def __init__(
        self,
        limit: int,
        window: float = 1.0,
        margin: float = 0.05,
        arrival_bound: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        background_limit: int | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.background_limit = min(background_limit or limit, limit)
        self.span = window + margin
        self.arrival_bound = arrival_bound
        self._clock = clock
        self._slots: list[Slot] = []
        self._waiters: list[tuple[int, int, asyncio.Future[Slot]]] = []
        self._seq = itertools.count()
        self._pump: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()  # an answer came back or someone new is waiting

    @contextlib.asynccontextmanager
    async def slot(self, priority: Priority = Priority.PERSON) -> AsyncIterator[None]:
        """Hold a place in the window for one call: ``async with limiter.slot(): send``."""
        taken = await self.acquire(priority)
        try:
            yield
        finally:
            self.release(taken)

    def in_window(self, priority: Priority | None = None) -> int:
        now = self._clock()
        self._slots = [s for s in self._slots if s.expires > now]
        if priority is None:
            return len(self._slots)
        if priority == Priority.BACKGROUND:  # the watchers' share: summaries count in it
            return sum(1 for s in self._slots if s.priority >= Priority.BACKGROUND)
        return sum(1 for s in self._slots if s.priority == priority)

    def waiting(self) -> int:
        """Calls waiting for a place now: the quota is busy."""
        return sum(1 for *_, future in self._waiters if not future.done())

    def _may_go(self, priority: Priority) -> bool:
        if self.in_window() >= self.limit:
            return False
        return (
            priority < Priority.BACKGROUND
            or self.in_window(Priority.BACKGROUND) < self.background_limit
        )

    def _take(self, priority: Priority) -> Slot:
        taken = Slot(self._clock() + self.arrival_bound + self.span, priority)
        self._slots.append(taken)
        return taken

    async def acquire(self, priority: Priority = Priority.PERSON) -> Slot:
        """Wait until a call may be sent now; pass the result to :meth:`release`."""
        if not self._waiters and self._may_go(priority):
            return self._take(priority)
        future: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._seq), future))
        self._changed.set()  # a person may now go ahead of capped background work
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._release_waiters())
        return await future

    def release(self, taken: Slot) -> None:
        """The call's answer is back: it arrived by now, so it counts one window more."""
        taken.expires = min(taken.expires, self._clock() + self.span)
        self._changed.set()

    async def _release_waiters(self) -> None:
        while self._waiters:
            priority, _, future = self._waiters[0]
            if future.done():  # a cancelled waiter gives its turn away
                heapq.heappop(self._waiters)
                continue
            if self._may_go(Priority(priority)):
                heapq.heappop(self._waiters)
                future.set_result(self._take(Priority(priority)))
                continue
            # Wake when the oldest place expires, or earlier if an answer shortens one
            # or a person arrives.
            wait = min(s.expires for s in self._slots) - self._clock()
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(wait, 0.001))
