"""Run many calls with a few in flight at a time: bulk work against a shared quota."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


async def gather_bounded(
    calls: Iterable[Callable[[], Awaitable[Any]]],
    limit: int,
    *,
    return_exceptions: bool = False,
) -> list[Any]:
    """``await call()`` for each call, at most ``limit`` at once; results in order (with
    ``return_exceptions``, an exception in place of its result, as asyncio.gather)."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls), return_exceptions=return_exceptions)
