"""Storage: the schema and its migrations apart from one repository per table family
(watches, polls, outbox, events seen, action log); ``Store`` is all of them on one engine."""

from bot.db.engine import async_url
from bot.db.outbox import OutboxEntry
from bot.db.polls import Poll
from bot.db.schema import ACTIVE, ENDED, PAUSED, polls
from bot.db.store import Store
from bot.db.watches import Watch, WatchChange

__all__ = [
    "ACTIVE",
    "ENDED",
    "PAUSED",
    "OutboxEntry",
    "Poll",
    "Store",
    "Watch",
    "WatchChange",
    "async_url",
    "polls",
]
