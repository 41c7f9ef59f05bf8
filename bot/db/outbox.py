"""The outbox repository: each Slack post recorded before it is made and after it landed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, select, update

from .engine import Repository
from .schema import outbox
from .watches import WatchChange, watch_update


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    state: str
    ts: str | None
    fresh: bool  # created by this call: nothing can have been posted for it yet
    created_at: float = 0.0  # when the intent was recorded: no post of it is older


class OutboxRepository(Repository):
    async def begin_post(self, watch_id: int, kind: str, key: str, now: float) -> OutboxEntry:
        """Record the intent to post before posting. An existing entry means an earlier
        attempt may already have reached Slack: the caller must look before posting."""
        where = and_(outbox.c.watch_id == watch_id, outbox.c.kind == kind, outbox.c.key == key)
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(outbox).where(where))).first()
            if row is not None:
                return OutboxEntry(
                    row.id, row.state, row.ts, fresh=False, created_at=row.created_at
                )
            result = await conn.execute(
                insert(outbox).values(
                    watch_id=watch_id, kind=kind, key=key, state="pending", created_at=now
                )
            )
            entry_id = result.inserted_primary_key[0]
            return OutboxEntry(entry_id, "pending", None, fresh=True, created_at=now)

    async def finish_post(
        self, entry_id: int, ts: str, now: float, *, watch_id: int, **watch_values: Any
    ) -> None:
        """Slack accepted the post: record it and what the channel now knows, together
        (``watch_values`` as for ``set_watch``)."""
        await self.record_post(entry_id, ts, now, watch_id, WatchChange(**watch_values))

    async def record_post(
        self, entry_id: int, ts: str, now: float, watch_id: int, change: WatchChange
    ) -> None:
        """:meth:`finish_post`, typed: the post and the change to its watch, in one
        transaction."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == entry_id)
                .values(state="posted", ts=ts, posted_at=now)
            )
            statement = watch_update(watch_id, change)
            if statement is not None:
                await conn.execute(statement)

    async def posted(self, watch_id: int, kind: str | None = None) -> list[tuple[str, str]]:
        """(kind, key) of what was posted for a watch, oldest first."""
        query = select(outbox.c.kind, outbox.c.key).where(
            outbox.c.watch_id == watch_id, outbox.c.state == "posted"
        )
        if kind is not None:
            query = query.where(outbox.c.kind == kind)
        async with self.engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(query.order_by(outbox.c.id))).all()]

    async def posted_ts(self, watch_id: int, kind: str, key: str) -> str | None:
        """The ts of a post made for a watch, if it was made (a lookup: records nothing)."""
        query = select(outbox.c.ts).where(
            outbox.c.watch_id == watch_id,
            outbox.c.kind == kind,
            outbox.c.key == key,
            outbox.c.state == "posted",
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar()

    async def pending_posts(self, watch_id: int, kind: str) -> list[str]:
        """Keys of a kind of post begun for a watch and not yet done, oldest first."""
        query = select(outbox.c.key).where(
            outbox.c.watch_id == watch_id, outbox.c.kind == kind, outbox.c.state == "pending"
        )
        async with self.engine.connect() as conn:
            return [r[0] for r in (await conn.execute(query.order_by(outbox.c.id))).all()]

    async def forget_posts(self, watch_id: int, kind: str) -> None:
        """Drop a kind of post from the record, so it can be made again (a new pause DM)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(outbox).where(outbox.c.watch_id == watch_id, outbox.c.kind == kind)
            )
