"""The account's API quota shared by every replica on one PostgreSQL database.

Each replica keeps its own scheduler (bot/iot/quota.py: people before background work,
the watchers' share), and a call it lets go must also take a place in the deployment's
window, kept in the ``quota_slots`` table: at most ``limit`` places in any window, of
which at most ``background_limit`` for background work, on the database's clock (never
a host's). Places are taken one at a time under a transaction-scoped advisory lock.
A place expires as a local one does: one window after the call's answer, or after
``arrival_bound`` plus a window if the answer is slow. So a replica killed while
holding places gives them back within about two windows, with no one to clean up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..iot.quota import Priority, SlidingWindowLimiter

# One lock for the quota (the account's, shared by every replica of the deployment).
QUOTA_LOCK = 7_305_410_021
NOW = "extract(epoch from clock_timestamp())"
# When the window is full: look again when its oldest place expires, at most this late
# (a place shortened by an answer elsewhere frees it earlier).
MAX_WAIT = 0.1

_TAKE = text(
    f"""
    WITH gone AS (DELETE FROM quota_slots WHERE expires_at <= {NOW}),
    held AS (
        SELECT count(*) AS n,
               count(*) FILTER (WHERE priority >= :background) AS background,
               min(expires_at) - {NOW} AS soonest
        FROM quota_slots WHERE expires_at > {NOW}
    ),
    taken AS (
        INSERT INTO quota_slots (expires_at, priority)
        SELECT {NOW} + :hold, :priority FROM held
        WHERE held.n < :limit
          AND (:priority < :background OR held.background < :background_limit)
        RETURNING id
    )
    SELECT (SELECT id FROM taken) AS id, (SELECT soonest FROM held) AS soonest
    """
)
_RELEASE = text(
    f"UPDATE quota_slots SET expires_at = least(expires_at, {NOW} + :span) WHERE id = :id"
)


# A shared place is granted a database round trip before the call is sent, by a process
# that may be busier than a lone one: its arrival is bounded more loosely than in-process
# (a place is shortened to one window when the answer comes, so only slow calls hold it).
SHARED_ARRIVAL_BOUND = 1.0


class SharedWindowLimiter(SlidingWindowLimiter):
    """A SlidingWindowLimiter whose places are also the deployment's (see above)."""

    def __init__(self, engine: AsyncEngine, limit: int, **kwargs: object) -> None:
        kwargs.setdefault("arrival_bound", SHARED_ARRIVAL_BOUND)
        super().__init__(limit, **kwargs)  # type: ignore[arg-type]
        self._engine = engine

    @contextlib.asynccontextmanager
    async def slot(self, priority: Priority = Priority.PERSON) -> AsyncIterator[None]:
        taken = await self.acquire(priority)  # this replica's turn: people first
        try:
            shared = await self._take_shared(priority)
            try:
                yield
            finally:
                await self._release_shared(shared)
        finally:
            self.release(taken)

    async def _take_shared(self, priority: Priority) -> int:
        """A place in the deployment's window, waiting for one if it is full."""
        while True:
            slot_id, soonest = await self.try_take(priority)
            if slot_id is not None:
                return slot_id
            await asyncio.sleep(min(max(soonest or MAX_WAIT, 0.002), MAX_WAIT))

    async def try_take(self, priority: Priority) -> tuple[int | None, float | None]:
        """Take a place now if the window has one for ``priority``: (its id, None), else
        (None, seconds until the oldest place expires)."""
        values = {
            "hold": self.arrival_bound + self.span,
            "priority": int(priority),
            "background": int(Priority.BACKGROUND),
            "limit": self.limit,
            "background_limit": self.background_limit,
        }
        async with self._engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": QUOTA_LOCK})
            row = (await conn.execute(_TAKE, values)).one()
        if row.id is not None:
            return int(row.id), None
        return None, float(row.soonest) if row.soonest is not None else None

    async def _release_shared(self, slot_id: int) -> None:
        """The answer is back: the place counts one window more (a failure here only
        leaves it to expire at its bound)."""
        with contextlib.suppress(Exception):
            async with self._engine.begin() as conn:
                await conn.execute(_RELEASE, {"id": slot_id, "span": self.span})
