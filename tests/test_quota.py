"""The quota limiter: never more than the limit in any sliding window; people first.

Apart from the first test (35 real calls through a real window), the limiter's clock is
driven by the test: what a place in the window holds, and when, is read from the limiter
at chosen moments (``in_window``), never measured in wall-clock time."""

from __future__ import annotations

import asyncio
import time

from bot.iot.quota import Priority, SlidingWindowLimiter


class Clock:
    """The limiter's clock, moved by the test (in steps that binary floats hold exactly,
    so "one window later" is exactly when a place frees)."""

    def __init__(self) -> None:
        self.now = 1024.0

    def __call__(self) -> float:
        return self.now


def max_in_window(times: list[float], span: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= span:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_never_more_than_limit_in_any_window() -> None:
    """35 calls through a 10-per-window limiter: at most 10 in any window (by the
    limiter's own clock, when each was let go), none lost."""
    limiter = SlidingWindowLimiter(10, window=0.2, margin=0.01, clock=time.monotonic)
    stamps: list[float] = []

    async def one() -> None:
        async with limiter.slot():
            stamps.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(35)))
    assert len(stamps) == 35
    assert max_in_window(stamps, 0.2) <= 10


async def test_people_go_before_background_work() -> None:
    """When both wait, every person's call is released before any background call."""
    clock = Clock()
    limiter = SlidingWindowLimiter(5, window=0.125, margin=0.0, clock=clock)
    for _ in range(5):  # fill the window so everyone below waits
        limiter.release(await limiter.acquire())
    order: list[str] = []

    async def one(name: str, priority: Priority) -> None:
        async with limiter.slot(priority):
            order.append(name)

    tasks = [asyncio.create_task(one(f"bg{i}", Priority.BACKGROUND)) for i in range(3)]
    tasks += [asyncio.create_task(one(f"p{i}", Priority.PERSON)) for i in range(2)]
    await asyncio.sleep(0)  # one turn of the loop: all five are queued, background first
    assert order == []
    clock.now += 0.125  # the whole window frees at once
    await asyncio.gather(*tasks)
    assert order == ["p0", "p1", "bg0", "bg1", "bg2"]


async def test_cancelled_waiter_gives_its_turn_away() -> None:
    """A caller that gives up while waiting does not use a slot: the next caller gets the
    place that frees, and only that caller holds one."""
    clock = Clock()
    limiter = SlidingWindowLimiter(1, window=0.125, margin=0.0, clock=clock)
    limiter.release(await limiter.acquire())
    gone = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)  # it is waiting
    gone.cancel()
    nxt = asyncio.create_task(limiter.acquire())
    clock.now += 0.125  # the place frees
    await nxt
    assert gone.cancelled() and limiter.in_window() == 1  # the next caller's, no other


async def test_a_call_counts_until_one_window_after_its_answer() -> None:
    """The gateway counts arrivals, which happen before the answer: the place is held from
    release until one window after the answer comes back."""
    clock = Clock()
    limiter = SlidingWindowLimiter(1, window=0.125, margin=0.0, arrival_bound=0.5, clock=clock)
    start = clock.now
    slot = await limiter.acquire()
    clock.now = start + 0.25
    assert limiter.in_window() == 1  # no answer yet: it counts
    limiter.release(slot)  # the answer, 0.25 s after the call was let go
    clock.now = start + 0.375 - 1 / 1024
    assert limiter.in_window() == 1
    clock.now = start + 0.375  # one window after the answer
    assert limiter.in_window() == 0
    await limiter.acquire()  # the place is free: the next call goes at once
    assert limiter.in_window() == 1


async def test_a_slow_answer_holds_its_place_only_until_the_arrival_bound() -> None:
    """A call still waiting for its answer counts until arrival_bound plus one window."""
    clock = Clock()
    limiter = SlidingWindowLimiter(1, window=0.125, margin=0.0, arrival_bound=0.25, clock=clock)
    start = clock.now
    await limiter.acquire()  # never answered
    waiting = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)  # one turn of the loop: it is queued
    clock.now = start + 0.375 - 1 / 1024
    assert limiter.in_window() == 1 and not waiting.done()
    clock.now = start + 0.375
    assert limiter.in_window() == 0
    await waiting  # the limiter lets the queued call go once the place frees
    assert limiter.in_window() == 1


async def test_background_work_keeps_to_its_share() -> None:
    """Background calls never take more than their share; people still go right away."""
    clock = Clock()
    limiter = SlidingWindowLimiter(
        4, window=0.125, margin=0.0, arrival_bound=0.25, background_limit=2, clock=clock
    )
    first = [await limiter.acquire(Priority.BACKGROUND) for _ in range(2)]
    assert len(first) == 2 and limiter.in_window(Priority.BACKGROUND) == 2
    later = [asyncio.create_task(limiter.acquire(Priority.BACKGROUND)) for _ in range(2)]
    await asyncio.sleep(0)  # one turn of the loop: both are queued
    # The clock stands still: nothing frees, yet both people go (the other half was free).
    await limiter.acquire(Priority.PERSON)
    await limiter.acquire(Priority.PERSON)
    assert limiter.in_window(Priority.PERSON) == 2
    assert not any(t.done() for t in later)  # background waits for its own share to free
    assert limiter.in_window(Priority.BACKGROUND) == 2
    clock.now += 0.25 + 0.125  # the arrival bound and a window later: every place frees
    await asyncio.gather(*later)
    assert limiter.in_window(Priority.BACKGROUND) == 2


async def test_summaries_wait_behind_polls_and_share_their_cap() -> None:
    """Device summaries (SUMMARY) go after every waiting poll (BACKGROUND), and count in
    the watchers' share: a finished batch's poll is not stuck behind others' summaries."""
    clock = Clock()
    limiter = SlidingWindowLimiter(
        4, window=0.125, margin=0.0, arrival_bound=0.25, background_limit=2, clock=clock
    )
    held = [await limiter.acquire(Priority.SUMMARY) for _ in range(2)]
    assert len(held) == 2 and limiter.in_window(Priority.BACKGROUND) == 2  # the share is full
    order: list[str] = []

    async def one(name: str, priority: Priority) -> None:
        async with limiter.slot(priority):
            order.append(name)

    tasks = [asyncio.create_task(one(f"sum{i}", Priority.SUMMARY)) for i in range(2)]
    tasks += [asyncio.create_task(one(f"poll{i}", Priority.BACKGROUND)) for i in range(2)]
    await asyncio.sleep(0)
    assert order == []  # the summaries already sent hold the whole share
    clock.now += 0.25 + 0.125
    await asyncio.gather(*tasks[2:])
    assert order == ["poll0", "poll1"]  # queued later, released first; the share is full again
    clock.now += 0.25 + 0.125
    await asyncio.gather(*tasks[:2])
    assert order[2:] == ["sum0", "sum1"]
