"""The events-seen repository: Slack Events API deliveries already handled (de-duplication)."""

from __future__ import annotations

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from .engine import Repository
from .schema import events_seen


class EventsSeenRepository(Repository):
    async def first_delivery(self, event_id: str, now: float, keep: float = 86400.0) -> bool:
        """True the first time an Events API event_id is seen, False for Slack's retries
        (and for a second process handling the same delivery). Forgets after ``keep``."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(delete(events_seen).where(events_seen.c.seen_at < now - keep))
                await conn.execute(insert(events_seen).values(event_id=event_id, seen_at=now))
        except IntegrityError:
            return False
        return True
