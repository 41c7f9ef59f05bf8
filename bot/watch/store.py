"""Storage moved to bot.db; the names callers import from here, until they import there."""

from bot.db.engine import async_url
from bot.db.outbox import OutboxEntry
from bot.db.polls import Poll
from bot.db.schema import ACTIVE, ENDED, PAUSED, polls
from bot.db.store import Store
from bot.db.watches import Watch

__all__ = [
    "ACTIVE",
    "ENDED",
    "PAUSED",
    "OutboxEntry",
    "Poll",
    "Store",
    "Watch",
    "async_url",
    "polls",
]
