"""The quota limiter: never more than the limit in any sliding window; people first."""

from __future__ import annotations

import asyncio
import time

from bot.iot.quota import Priority, SlidingWindowLimiter


def max_in_window(times: list[float], span: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= span:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_never_more_than_limit_in_any_window() -> None:
    """35 calls through a 10-per-window limiter: at most 10 in any window, none lost."""
    limiter = SlidingWindowLimiter(10, window=0.2, margin=0.01)
    stamps: list[float] = []

    async def one() -> None:
        async with limiter.slot():
            stamps.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(35)))
    assert len(stamps) == 35
    assert max_in_window(stamps, 0.2) <= 10
    assert stamps[-1] - stamps[0] >= 3 * 0.2  # four windows' worth


async def test_people_go_before_background_work() -> None:
    """When both wait, every person's call is released before any background call."""
    limiter = SlidingWindowLimiter(1, window=0.05, margin=0.0)
    limiter.release(await limiter.acquire())  # fill the window so everyone below waits
    order: list[str] = []

    async def one(name: str, priority: Priority) -> None:
        async with limiter.slot(priority):
            order.append(name)

    tasks = [asyncio.create_task(one(f"bg{i}", Priority.BACKGROUND)) for i in range(3)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(one(f"p{i}", Priority.PERSON)) for i in range(2)]
    await asyncio.gather(*tasks)
    assert order == ["p0", "p1", "bg0", "bg1", "bg2"]


async def test_cancelled_waiter_gives_its_turn_away() -> None:
    """A caller that gives up while waiting does not use a slot."""
    limiter = SlidingWindowLimiter(1, window=0.05, margin=0.0)
    limiter.release(await limiter.acquire())
    gone = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    gone.cancel()
    start = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - start < 0.09  # got the very next slot


async def wait_for_next_slot(limiter: SlidingWindowLimiter) -> float:
    start = time.monotonic()
    limiter.release(await limiter.acquire())
    return time.monotonic() - start


async def test_a_call_counts_until_one_window_after_its_answer() -> None:
    """The gateway counts arrivals, which happen before the answer: the place is held from
    release until one window after the answer comes back."""
    limiter = SlidingWindowLimiter(1, window=0.1, margin=0.0, arrival_bound=0.3)
    slot = await limiter.acquire()

    async def answer_later() -> None:
        await asyncio.sleep(0.15)
        limiter.release(slot)

    answering = asyncio.create_task(answer_later())
    waited = await wait_for_next_slot(limiter)
    await answering
    assert 0.23 <= waited < 0.35  # 0.15 s to the answer, then one 0.1 s window


async def test_a_slow_answer_holds_its_place_only_until_the_arrival_bound() -> None:
    """A call still waiting for its answer counts until arrival_bound plus one window."""
    limiter = SlidingWindowLimiter(1, window=0.1, margin=0.0, arrival_bound=0.2)
    await limiter.acquire()  # never answered
    waited = await wait_for_next_slot(limiter)
    assert 0.28 <= waited < 0.45


async def test_background_work_keeps_to_its_share() -> None:
    """Background calls never take more than their share; people still go right away."""
    limiter = SlidingWindowLimiter(4, window=0.2, margin=0.0, background_limit=2)
    background = [asyncio.create_task(limiter.acquire(Priority.BACKGROUND)) for _ in range(4)]
    await asyncio.sleep(0.05)
    assert sum(t.done() for t in background) == 2
    start = time.monotonic()
    await limiter.acquire(Priority.PERSON)
    await limiter.acquire(Priority.PERSON)
    assert time.monotonic() - start < 0.05  # the other half of the window was free
    await asyncio.gather(*background)
