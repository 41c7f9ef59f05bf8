"""The store (bot.db): schema migration, one live watch per channel, the outbox."""

from __future__ import annotations

import dataclasses

import pytest

from bot.db.engine import async_url
from bot.db.migrations import MIGRATIONS
from bot.db.schema import ACTIVE, ENDED, PAUSED, schema_version, watches
from bot.db.store import Store
from bot.db.watches import WatchChange
from tests.helpers import POSTGRES_URL, fresh_postgres, need_postgres


# The PostgreSQL variants share one database, emptied by each: never two at once (one
# xdist group runs on one worker, in turn).
@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.xdist_group("postgres"))]
)
async def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/w.db"
    need_postgres()
    request.getfixturevalue("postgres_turn")
    return await fresh_postgres(POSTGRES_URL)


@pytest.fixture
async def store(database_url):
    opened = await Store.open(database_url)
    yield opened
    await opened.close()


async def add(store: Store, channel: str = "C1", job: str = "J1", now: float = 100.0):
    return await store.add_watch(
        job_id=job,
        instance_id=None,
        channel_id=channel,
        created_by="U1",
        created_by_name="alice",
        told_status="PLANNED",
        only=frozenset({"COMPLETED"}),
        quiet=True,
        now=now,
        expires_at=now + 1000,
    )


def test_urls_pick_async_drivers() -> None:
    """Plain URLs as platforms hand them out get the async driver."""
    assert async_url("sqlite:///otajob.db") == "sqlite+aiosqlite:///otajob.db"
    assert async_url("postgresql://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    assert async_url("postgres://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"


async def test_migrations_are_idempotent(database_url) -> None:
    """Opening the same database again keeps its data and its schema version."""
    url = database_url
    first = await Store.open(url)
    await add(first)
    await first.close()
    again = await Store.open(url)
    assert await again.migrate() == 8
    assert len(await again.live_watches()) == 1
    await again.close()


async def test_each_version_is_recorded_once(store) -> None:
    """A fresh database has run every migration, in order, and recorded each version."""
    from sqlalchemy import select

    assert len(MIGRATIONS) == 8
    async with store.engine.connect() as conn:
        versions = (await conn.execute(select(schema_version.c.version))).scalars().all()
    assert sorted(versions) == [1, 2, 3, 4, 5, 6, 7, 8]


async def test_one_live_watch_per_job_and_channel(store) -> None:
    """Watching twice returns the existing watch; after it ends, a new one can start."""
    watch, created = await add(store)
    assert created and watch.only == frozenset({"COMPLETED"}) and watch.quiet
    same, created = await add(store)
    assert not created and same.id == watch.id
    other, created = await add(store, channel="C2")
    assert created and other.id != watch.id
    await store.end_watch(watch.id, "unwatched", 200.0)
    fresh, created = await add(store)
    assert created and fresh.state == ACTIVE
    assert (await store.get_watch(watch.id)).state == ENDED


async def test_polls_are_shared_and_due(store) -> None:
    """Two channels watching one job share one poll row, due at once."""
    await add(store, channel="C1")
    await add(store, channel="C2")
    assert (await store.budget_counts())[0] == 1
    (poll,) = await store.due_polls(now=100.0, limit=10)
    assert poll.job_id == "J1"
    await store.record_poll("J1", None, next_poll_at=500.0, now=100.0, status="IN_PROGRESS")
    assert await store.due_polls(now=200.0, limit=10) == []
    assert (await store.get_poll("J1", None)).status == "IN_PROGRESS"


async def test_outbox_records_intent_then_post(store) -> None:
    """The first begin_post is fresh; a second one (after a crash) is not; finish records."""
    watch, _ = await add(store)
    entry = await store.begin_post(watch.id, "transition", "PLANNED>IN_PROGRESS", 1.0)
    assert entry.fresh and entry.state == "pending"
    again = await store.begin_post(watch.id, "transition", "PLANNED>IN_PROGRESS", 2.0)
    assert not again.fresh and again.id == entry.id
    await store.finish_post(entry.id, "111.1", 3.0, watch_id=watch.id, told_status="IN_PROGRESS")
    assert (await store.get_watch(watch.id)).told_status == "IN_PROGRESS"
    assert await store.posted(watch.id) == [("transition", "PLANNED>IN_PROGRESS")]


def test_a_watch_change_names_only_watch_columns() -> None:
    """WatchChange is the whitelist of what set_watch may change: every field is a column
    of the watches table (``only`` is stored as only_states), never its identity."""
    columns = set(watches.c.keys())
    names = {field.name for field in dataclasses.fields(WatchChange)}
    assert {"only_states" if n == "only" else n for n in names} <= columns
    assert not names & {"id", "job_id", "instance_id", "channel_id", "created_at"}


async def test_watches_change_by_type_or_by_name(store) -> None:
    """change_watch takes a WatchChange (None empties a column, an unset field is kept);
    set_watch(**values) builds one, and an unknown name is a TypeError that changes
    nothing."""
    watch, _ = await add(store)
    await store.change_watch(
        watch.id, WatchChange(state=PAUSED, note="no access", only=frozenset({"FAILED", "A"}))
    )
    changed = await store.get_watch(watch.id)
    assert (changed.state, changed.note, changed.only) == (PAUSED, "no access", {"A", "FAILED"})
    assert changed.told_status == "PLANNED" and changed.quiet  # unset: kept
    await store.set_watch(watch.id, state=ACTIVE, note=None, notify=("U1", "S2"))
    changed = await store.get_watch(watch.id)
    assert (changed.state, changed.note, changed.notify) == (ACTIVE, None, ("U1", "S2"))
    with pytest.raises(TypeError):
        await store.set_watch(watch.id, state=ENDED, bogus=1)
    with pytest.raises(TypeError):
        await store.finish_post(1, "1.1", 1.0, watch_id=watch.id, job_id="J2")
    assert (await store.get_watch(watch.id)) == changed
    await store.change_watch(watch.id, WatchChange())  # nothing to change
    assert (await store.get_watch(watch.id)) == changed


async def test_a_version_2_database_gains_the_triage_schema(tmp_path) -> None:
    """v3 adds alert columns, poll counts, event dedup and the action log to a database
    made before them, keeping its watches."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path}/old.db"
    store = await Store.open(url)
    await add(store)
    async with store.engine.begin() as conn:  # back to the v2 shape
        for column in ("alert_rule", "notify", "alerting", "alerts_sent"):
            await conn.execute(text(f"ALTER TABLE watches DROP COLUMN {column}"))
        for column in ("counts_json", "counted_at"):
            await conn.execute(text(f"ALTER TABLE polls DROP COLUMN {column}"))
        await conn.execute(text("DROP TABLE events_seen"))
        await conn.execute(text("DROP TABLE action_log"))
        await conn.execute(text("DELETE FROM schema_version WHERE version >= 3"))
    await store.close()

    upgraded = await Store.open(url)
    try:
        (watch,) = await upgraded.live_watches()
        assert watch.alert_rule is None and watch.notify == () and not watch.alerting
        await upgraded.set_watch(watch.id, alert_rule="failed>5%", notify=("U0ONCALL1",))
        assert (await upgraded.get_watch(watch.id)).notify == ("U0ONCALL1",)
        assert await upgraded.first_delivery("Ev1", 10.0)
        assert not await upgraded.first_delivery("Ev1", 11.0)
        log_id = await upgraded.start_action(
            at=1.0,
            team_id=None,
            user_id="U1",
            user_name="ann",
            action="cancel",
            job_id=watch.job_id,
            instance_id=None,
            channel_id="C1",
            detail={"cancel": ["queued"]},
        )
        await upgraded.finish_action(
            log_id, detail={"cancel": ["queued"]}, request_ids=["R1"], outcome="done"
        )
        (row,) = await upgraded.actions_for(watch.job_id)
        assert row["id"] == log_id and row["request_ids"] == "R1" and row["outcome"] == "done"
    finally:
        await upgraded.close()


async def test_event_ids_are_forgotten_after_a_day(store) -> None:
    assert await store.first_delivery("Ev1", 0.0)
    assert not await store.first_delivery("Ev1", 100.0)
    assert await store.first_delivery("Ev2", 90_000.0)  # prunes Ev1
    assert await store.first_delivery("Ev1", 90_001.0)


async def test_an_action_whose_heartbeat_stopped_is_claimed_once(store) -> None:
    """A write action is recorded as started before it runs; once its heartbeat is older
    than the cut-off it is claimed as interrupted by one caller only."""
    log_id = await store.start_action(
        at=100.0,
        team_id="T1",
        user_id="U1",
        user_name="ann",
        action="reupgrade",
        job_id="J1",
        instance_id=None,
        channel_id="C1",
        detail={"found": 40},
    )
    await store.action_alive(log_id, 160.0)
    assert await store.claim_interrupted(150.0) == []  # still beating at 160
    (claimed,) = await store.claim_interrupted(200.0)
    assert claimed["id"] == log_id and claimed["outcome"] == "interrupted"
    assert claimed["channel_id"] == "C1"
    assert await store.claim_interrupted(300.0) == []  # told once
    await store.finish_action(log_id, detail={}, request_ids=[], outcome="done")
    assert await store.claim_interrupted(400.0) == []
