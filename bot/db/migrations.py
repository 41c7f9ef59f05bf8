"""The versioned schema migrations (append-only) and the step that applies them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func, insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .schema import (
    action_log,
    channel_settings,
    events_seen,
    job_reads,
    leases,
    metadata,
    outbox,
    polls,
    quota_slots,
    schema_version,
    watches,
    watches_by_job,
)


def _v1(sync_conn: Any) -> None:
    metadata.create_all(sync_conn, tables=[watches, polls, outbox])


def _v2(sync_conn: Any) -> None:
    watches_by_job.create(sync_conn, checkfirst=True)


def _v3(sync_conn: Any) -> None:
    """Alerts on watches, device counts on polls, event dedup, the action log."""
    for table in (watches, polls):
        _add_missing_columns(sync_conn, table)
    metadata.create_all(sync_conn, tables=[events_seen, action_log])


def _v4(sync_conn: Any) -> None:
    """Actions are written before they run (where they were taken, and a heartbeat); a
    watch knows what its card shows, so a card Slack would not update is tried again."""
    _add_missing_columns(sync_conn, action_log)
    _add_missing_columns(sync_conn, watches)
    # A card posted before this version shows the status its channel was last told.
    sync_conn.execute(
        update(watches)
        .where(watches.c.card_ts.is_not(None), watches.c.card_status.is_(None))
        .values(card_status=watches.c.told_status)
    )


def _v5(sync_conn: Any) -> None:
    """Languages: a channel's (channel_settings) and a watch's creator's (for DMs)."""
    _add_missing_columns(sync_conn, watches)
    metadata.create_all(sync_conn, tables=[channel_settings])


def _v6(sync_conn: Any) -> None:
    """The quota's places, shared by replicas (used on PostgreSQL only)."""
    metadata.create_all(sync_conn, tables=[quota_slots])


def _v7(sync_conn: Any) -> None:
    """Leases shared by replicas."""
    metadata.create_all(sync_conn, tables=[leases])


def _v8(sync_conn: Any) -> None:
    """Job reads shared by replicas (used on PostgreSQL only)."""
    metadata.create_all(sync_conn, tables=[job_reads])


def _add_missing_columns(sync_conn: Any, table: Table) -> None:
    """ALTER TABLE ... ADD COLUMN for columns a database made by an older version lacks
    (v1 creates tables as defined now, so on a fresh database there are none)."""
    present = {c["name"] for c in inspect(sync_conn).get_columns(table.name)}
    for column in table.columns:
        if column.name not in present:
            kind = column.type.compile(dialect=sync_conn.dialect)
            sync_conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))


# A versioned scheme in place of Alembic: each entry upgrades the schema by one version
# inside one transaction. Append, never edit.
MIGRATIONS = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8]


async def applied_version(engine: AsyncEngine) -> int:
    """The newest version applied to the database (0: none); raises if unreachable."""
    async with engine.connect() as conn:
        if not await conn.run_sync(lambda c: inspect(c).has_table(schema_version.name)):
            return 0
        return (await conn.execute(select(func.max(schema_version.c.version)))).scalar() or 0


async def migrate(engine: AsyncEngine) -> int:
    """Bring the schema to the newest version; returns that version."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: metadata.create_all(c, tables=[schema_version]))
        current = (await conn.execute(select(func.max(schema_version.c.version)))).scalar()
        current = current or 0
        for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
            await conn.run_sync(step)
            await conn.execute(insert(schema_version).values(version=version))
    return len(MIGRATIONS)
