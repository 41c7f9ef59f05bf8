"""The channel-settings repository: the language each channel's posts are written in."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .engine import Repository
from .schema import channel_settings


class ChannelSettingsRepository(Repository):
    async def channel_language(self, channel_id: str) -> str | None:
        """The language set for ``channel_id``, or None (the workspace's default)."""
        async with self.engine.connect() as conn:
            row = await conn.execute(
                select(channel_settings.c.language).where(
                    channel_settings.c.channel_id == channel_id
                )
            )
            return row.scalar()

    async def channel_languages(self, channel_ids: Iterable[str]) -> dict[str, str]:
        """Languages set for any of ``channel_ids`` (channels without one are left out)."""
        ids = sorted(set(channel_ids))
        if not ids:
            return {}
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(channel_settings.c.channel_id, channel_settings.c.language).where(
                    channel_settings.c.channel_id.in_(ids),
                    channel_settings.c.language.is_not(None),
                )
            )
            return {row.channel_id: row.language for row in rows}

    async def set_channel_language(
        self, channel_id: str, language: str | None, *, set_by: str, now: float
    ) -> None:
        """Set (or with None, forget) a channel's language: one row per channel, upserted
        so two people setting it at once leave one answer, the later one."""
        async with self.engine.begin() as conn:
            if language is None:
                await conn.execute(
                    delete(channel_settings).where(channel_settings.c.channel_id == channel_id)
                )
                return
            insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
            values = {"channel_id": channel_id, "language": language, "set_by": set_by}
            statement = insert(channel_settings).values(**values, set_at=now)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[channel_settings.c.channel_id],
                    set_={"language": language, "set_by": set_by, "set_at": now},
                )
            )
