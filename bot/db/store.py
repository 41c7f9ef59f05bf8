"""Store: opens the database, migrates it, and offers every repository's methods."""

from __future__ import annotations

from .action_log import ActionLogRepository
from .channels import ChannelSettingsRepository
from .engine import open_engine
from .events_seen import EventsSeenRepository
from .leases import LeaseRepository
from .migrations import MIGRATIONS, applied_version, migrate
from .outbox import OutboxRepository
from .polls import PollRepository
from .watches import WatchRepository


class Store(
    WatchRepository,
    PollRepository,
    OutboxRepository,
    EventsSeenRepository,
    ActionLogRepository,
    ChannelSettingsRepository,
    LeaseRepository,
):
    """Watches, shared poll state, the post outbox, events seen and the action log, in a
    database (SQLAlchemy, async): SQLite by default, PostgreSQL with the same code.

    Every change is committed before the app acts on it, and every Slack post goes
    through the outbox (``begin_post`` before, ``finish_post`` only after Slack accepted
    it), so a SIGKILL at any moment loses no watch and, with the reconciliation in the
    poster, posts nothing twice.

    The methods are the repositories' own (one class per table family, each usable alone
    on an engine); code that needs only one family can ask for that repository's type.
    """

    @property
    def single_process(self) -> bool:
        """SQLite: one process uses the database (PostgreSQL may serve several)."""
        return self.engine.dialect.name == "sqlite"

    @classmethod
    async def open(cls, url: str) -> Store:
        store = cls(open_engine(url))
        await store.migrate()
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    async def migrated(self) -> bool:
        """The database answers and has every migration (for /readyz); raises if it
        does not answer."""
        return await applied_version(self.engine) >= len(MIGRATIONS)

    async def migrate(self) -> int:
        """Bring the schema to the newest version; returns that version."""
        return await migrate(self.engine)
