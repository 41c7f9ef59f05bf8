"""Watches, shared poll state and the post outbox, in a database (SQLAlchemy, async).

SQLite by default, PostgreSQL with the same code. Every change is committed before the
app acts on it, and every Slack post goes through the outbox (``begin_post`` before,
``finish_post`` only after Slack accepted it), so a SIGKILL at any moment loses no watch
and, with the reconciliation in the poster, posts nothing twice.

Times are stored as UNIX seconds (float): portable across both databases and free of
time-zone surprises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    case,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

metadata = MetaData()

ACTIVE, PAUSED, ENDED = "active", "paused", "ended"

watches = Table(
    "watches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(64), nullable=False),
    Column("instance_id", String(64), nullable=False),  # "" for none, so uniqueness works
    Column("channel_id", String(32), nullable=False),
    Column("created_by", String(32), nullable=False),  # Slack user ID, for DMs
    Column("created_by_name", String(100), nullable=False),  # shown in listings, no ping
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("only_states", String(200), nullable=False),  # comma-separated; "" = all
    Column("quiet", Boolean, nullable=False),
    Column("card_ts", String(32)),
    Column("told_status", String(32)),  # the last status this channel was told
    Column("card_status", String(32)),  # the status its card shows (None: as told_status)
    Column("state", String(16), nullable=False),
    Column("note", Text),  # why it is paused or ended
    Column("ended_at", Float),
    # v3: an alert on the failure rate ("failed>5%" or "failed>20") and whom it notifies
    # (Slack user and user group IDs a person typed, comma-separated).
    Column("alert_rule", String(40)),
    Column("notify", String(400)),
    Column("alerting", Boolean),  # above the threshold at the last count
    Column("alerts_sent", Integer),  # how many times it crossed: keys each alert post
)
# At most one live (not ended) watch of a job per channel.
Index(
    "one_live_watch_per_channel",
    watches.c.job_id,
    watches.c.instance_id,
    watches.c.channel_id,
    unique=True,
    sqlite_where=watches.c.state != ENDED,
    postgresql_where=watches.c.state != ENDED,
)

# The poll loop asks "does an active watch want this job?" for every due poll.
watches_by_job = Index("watches_by_job", watches.c.job_id, watches.c.instance_id, watches.c.state)

polls = Table(
    "polls",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("instance_id", String(64), primary_key=True),
    Column("status", String(32)),
    Column("job_json", Text),  # the last Data read, for listings and card updates
    Column("polled_at", Float),
    Column("next_poll_at", Float, nullable=False, index=True),
    Column("errors", Integer, nullable=False, default=0),
    Column("counts_json", Text),  # v3: the last device counts read, for the Home tab
    Column("counted_at", Float),
)

# v3: Events API deliveries already handled (Slack retries them), by event_id.
events_seen = Table(
    "events_seen",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("seen_at", Float, nullable=False, index=True),
)

# v3: every write action a person took: who, when, what, and Alibaba Cloud's answer.
action_log = Table(
    "action_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("team_id", String(32)),
    Column("user_id", String(32), nullable=False),
    Column("user_name", String(100), nullable=False),
    Column("action", String(32), nullable=False),  # cancel | reupgrade
    Column("job_id", String(64), nullable=False),
    Column("instance_id", String(64), nullable=False),
    Column("detail", Text, nullable=False),  # JSON: what was asked for, what was done
    Column("request_ids", Text, nullable=False),  # comma-separated
    # started (written before the first write) | done | partial | failed | interrupted
    Column("outcome", String(16), nullable=False),
    Column("error", Text),
    Column("channel_id", String(32)),  # where it was taken: where an interruption is told
    Column("alive_at", Float),  # refreshed while it runs; a stale one was interrupted
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("watch_id", Integer, ForeignKey("watches.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # card | transition | note | dm
    Column("key", String(80), nullable=False),
    Column("state", String(16), nullable=False),  # pending | posted
    Column("ts", String(32)),
    Column("created_at", Float, nullable=False),
    Column("posted_at", Float),
    UniqueConstraint("watch_id", "kind", "key"),
)

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))


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
MIGRATIONS = [_v1, _v2, _v3, _v4]


def async_url(url: str) -> str:
    """Accept URLs as platforms hand them out; pick the async driver."""
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


@dataclass(frozen=True)
class Watch:
    id: int
    job_id: str
    instance_id: str | None
    channel_id: str
    created_by: str
    created_by_name: str
    created_at: float
    expires_at: float
    only: frozenset[str]
    quiet: bool
    card_ts: str | None
    told_status: str | None
    state: str
    note: str | None
    alert_rule: str | None = None
    notify: tuple[str, ...] = ()
    alerting: bool = False
    alerts_sent: int = 0
    card_status: str | None = None  # what the card shows; None: as told_status

    @property
    def card_shows(self) -> str | None:
        return self.card_status or self.told_status

    @classmethod
    def from_row(cls, row: Any) -> Watch:
        return cls(
            id=row.id,
            job_id=row.job_id,
            instance_id=row.instance_id or None,
            channel_id=row.channel_id,
            created_by=row.created_by,
            created_by_name=row.created_by_name,
            created_at=row.created_at,
            expires_at=row.expires_at,
            only=frozenset(filter(None, row.only_states.split(","))),
            quiet=bool(row.quiet),
            card_ts=row.card_ts,
            told_status=row.told_status,
            state=row.state,
            note=row.note,
            alert_rule=row.alert_rule or None,
            notify=tuple(filter(None, (row.notify or "").split(","))),
            alerting=bool(row.alerting),
            alerts_sent=row.alerts_sent or 0,
            card_status=row.card_status,
        )


@dataclass(frozen=True)
class Poll:
    job_id: str
    instance_id: str | None
    status: str | None
    job_json: str | None
    next_poll_at: float
    errors: int
    counts_json: str | None = None
    counted_at: float | None = None


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    state: str
    ts: str | None
    fresh: bool  # created by this call: nothing can have been posted for it yet
    created_at: float = 0.0  # when the intent was recorded: no post of it is older


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def single_process(self) -> bool:
        """SQLite: one process uses the database (PostgreSQL may serve several)."""
        return self.engine.dialect.name == "sqlite"

    @classmethod
    async def open(cls, url: str) -> Store:
        engine = create_async_engine(async_url(url))
        if engine.dialect.name == "sqlite":
            from sqlalchemy import event

            @event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_conn: Any, _: Any) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA busy_timeout=5000")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

        store = cls(engine)
        await store.migrate()
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    async def migrate(self) -> int:
        """Bring the schema to the newest version; returns that version."""
        async with self.engine.begin() as conn:
            await conn.run_sync(lambda c: metadata.create_all(c, tables=[schema_version]))
            current = (await conn.execute(select(func.max(schema_version.c.version)))).scalar()
            current = current or 0
            for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
                await conn.run_sync(step)
                await conn.execute(insert(schema_version).values(version=version))
        return len(MIGRATIONS)

    # --- watches ------------------------------------------------------------------------

    async def add_watch(
        self,
        *,
        job_id: str,
        instance_id: str | None,
        channel_id: str,
        created_by: str,
        created_by_name: str,
        told_status: str | None,
        only: frozenset[str],
        quiet: bool,
        now: float,
        expires_at: float,
        alert_rule: str | None = None,
        notify: tuple[str, ...] = (),
    ) -> tuple[Watch, bool]:
        """Returns (watch, created). An existing live watch is returned as is.
        ``told_status`` is the status the new card will show."""
        values = {
            "job_id": job_id,
            "instance_id": instance_id or "",
            "channel_id": channel_id,
            "created_by": created_by,
            "created_by_name": created_by_name,
            "told_status": told_status,
            "created_at": now,
            "expires_at": expires_at,
            "only_states": ",".join(sorted(only)),
            "quiet": quiet,
            "state": ACTIVE,
            "alert_rule": alert_rule,
            "notify": ",".join(notify),
            "alerting": False,
            "alerts_sent": 0,
        }
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(insert(watches).values(**values))
                watch_id = result.inserted_primary_key[0]
                await self._ensure_poll(conn, job_id, instance_id, now)
        except IntegrityError:
            existing = await self.live_watch(job_id, instance_id, channel_id)
            if existing is None:  # ended between the insert and this read: a rare race
                raise
            return existing, False
        watch = await self.get_watch(watch_id)
        assert watch is not None
        return watch, True

    async def _ensure_poll(
        self, conn: AsyncConnection, job_id: str, instance_id: str | None, now: float
    ) -> None:
        """Create the job's poll row unless it exists (two channels may race to create it)."""
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        await conn.execute(
            dialect_insert(polls)
            .values(job_id=job_id, instance_id=instance_id or "", next_poll_at=now, errors=0)
            .on_conflict_do_nothing()
        )

    async def get_watch(self, watch_id: int) -> Watch | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(watches).where(watches.c.id == watch_id))).first()
        return Watch.from_row(row) if row else None

    async def live_watch(
        self, job_id: str, instance_id: str | None, channel_id: str
    ) -> Watch | None:
        query = select(watches).where(
            watches.c.job_id == job_id,
            watches.c.instance_id == (instance_id or ""),
            watches.c.channel_id == channel_id,
            watches.c.state != ENDED,
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return Watch.from_row(row) if row else None

    async def live_watches(
        self,
        *,
        job_id: str | None = None,
        instance_id: str | None = None,
        channel_id: str | None = None,
        state: str | None = None,
    ) -> list[Watch]:
        query = select(watches).where(watches.c.state != ENDED).order_by(watches.c.id)
        if job_id is not None:
            query = query.where(
                watches.c.job_id == job_id, watches.c.instance_id == (instance_id or "")
            )
        if channel_id is not None:
            query = query.where(watches.c.channel_id == channel_id)
        if state is not None:
            query = query.where(watches.c.state == state)
        async with self.engine.connect() as conn:
            return [Watch.from_row(r) for r in (await conn.execute(query)).all()]

    async def set_watch(self, watch_id: int, **values: Any) -> None:
        if "only" in values:
            values["only_states"] = ",".join(sorted(values.pop("only")))
        if "notify" in values:
            values["notify"] = ",".join(values["notify"])
        async with self.engine.begin() as conn:
            await conn.execute(update(watches).where(watches.c.id == watch_id).values(**values))

    async def end_watch(self, watch_id: int, note: str, now: float) -> None:
        await self.set_watch(watch_id, state=ENDED, note=note, ended_at=now)

    # --- polls ---------------------------------------------------------------------------

    async def due_polls(self, now: float, limit: int) -> list[Poll]:
        """Jobs whose next poll is due and that some active watch still wants."""
        query = (
            select(polls)
            .where(polls.c.next_poll_at <= now, _wanted())
            .order_by(polls.c.next_poll_at)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [_poll(r) for r in (await conn.execute(query)).all()]

    async def claim_poll(self, poll: Poll, now: float, lease: float) -> bool:
        """Take a due poll for ``lease`` seconds. False if another poller (another process
        during a rolling deploy, say) took it first: only one polls a job at a time."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(polls)
                .where(
                    polls.c.job_id == poll.job_id,
                    polls.c.instance_id == (poll.instance_id or ""),
                    polls.c.next_poll_at == poll.next_poll_at,
                    polls.c.next_poll_at <= now,
                )
                .values(next_poll_at=now + lease)
            )
        return result.rowcount == 1

    async def next_due(self) -> float | None:
        """When the next wanted poll is due (None: nothing is watched)."""
        query = select(func.min(polls.c.next_poll_at)).where(_wanted())
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar()

    async def get_poll(self, job_id: str, instance_id: str | None) -> Poll | None:
        key = and_(polls.c.job_id == job_id, polls.c.instance_id == (instance_id or ""))
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(polls).where(key))).first()
        return _poll(row) if row else None

    async def polls_for(self, watched: list[Watch]) -> dict[tuple[str, str | None], Poll]:
        """The poll rows of several watches' jobs, in one query."""
        if not watched:
            return {}
        query = select(polls).where(polls.c.job_id.in_({w.job_id for w in watched}))
        async with self.engine.connect() as conn:
            rows = [_poll(r) for r in (await conn.execute(query)).all()]
        return {(p.job_id, p.instance_id): p for p in rows}

    async def record_poll(
        self,
        job_id: str,
        instance_id: str | None,
        *,
        next_poll_at: float,
        now: float,
        status: str | None = None,
        job_json: str | None = None,
        error: bool = False,
    ) -> None:
        key = and_(polls.c.job_id == job_id, polls.c.instance_id == (instance_id or ""))
        values: dict[str, Any] = {"next_poll_at": next_poll_at, "polled_at": now}
        if error:
            values["errors"] = polls.c.errors + 1
        else:
            values.update(errors=0, status=status, job_json=job_json)
        async with self.engine.begin() as conn:
            await conn.execute(update(polls).where(key).values(**values))

    async def record_counts(
        self, job_id: str, instance_id: str | None, counts_json: str, now: float
    ) -> None:
        """The device counts last read for a job (the Home tab shows them)."""
        key = and_(polls.c.job_id == job_id, polls.c.instance_id == (instance_id or ""))
        async with self.engine.begin() as conn:
            await conn.execute(
                update(polls).where(key).values(counts_json=counts_json, counted_at=now)
            )

    async def budget_counts(self) -> tuple[int, int]:
        """(jobs, jobs with an alert) among the actively watched jobs that are not merely
        scheduled: what shares the poll budget (a scheduled batch is checked around its
        start time, rarely before; each poll of an alerted job also reads device counts).
        One query: the poll loop asks at every tick."""
        alerted = (
            select(watches.c.id)
            .where(
                watches.c.job_id == polls.c.job_id,
                watches.c.instance_id == polls.c.instance_id,
                watches.c.state == ACTIVE,
                watches.c.alert_rule.is_not(None),
            )
            .exists()
        )
        query = (
            select(func.count(), func.coalesce(func.sum(case((alerted, 1), else_=0)), 0))
            .select_from(polls)
            .where(_wanted(), func.coalesce(polls.c.status, "") != "PLANNED")
        )
        async with self.engine.connect() as conn:
            jobs, with_alerts = (await conn.execute(query)).one()
        return int(jobs or 0), int(with_alerts or 0)

    async def count_polled_jobs(self) -> int:
        return (await self.budget_counts())[0]

    async def expired_watches(self, now: float) -> list[Watch]:
        """Live watches (active or paused) past their end date."""
        query = select(watches).where(watches.c.state != ENDED, watches.c.expires_at <= now)
        async with self.engine.connect() as conn:
            return [Watch.from_row(r) for r in (await conn.execute(query)).all()]

    # --- events and the action log --------------------------------------------------------

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

    async def start_action(
        self,
        *,
        at: float,
        team_id: str | None,
        user_id: str,
        user_name: str,
        action: str,
        job_id: str,
        instance_id: str | None,
        channel_id: str | None,
        detail: dict[str, Any],
    ) -> int:
        """Record an action before its first write (outcome ``started``): a crash while it
        runs leaves this row, and :meth:`claim_interrupted` finds it."""
        values = {
            "at": at,
            "team_id": team_id,
            "user_id": user_id,
            "user_name": user_name[:100],
            "action": action,
            "job_id": job_id,
            "instance_id": instance_id or "",
            "channel_id": channel_id,
            "detail": _json(detail),
            "request_ids": "",
            "outcome": "started",
            "alive_at": at,
        }
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(action_log).values(**values))
        return result.inserted_primary_key[0]

    async def action_alive(self, log_id: int, now: float) -> None:
        """The action is still running (its heartbeat)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(action_log)
                .where(action_log.c.id == log_id, action_log.c.outcome == "started")
                .values(alive_at=now)
            )

    async def finish_action(
        self,
        log_id: int,
        *,
        detail: dict[str, Any],
        request_ids: list[str],
        outcome: str,
        error: str | None = None,
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(action_log)
                .where(action_log.c.id == log_id)
                .values(
                    detail=_json(detail),
                    request_ids=",".join(request_ids),
                    outcome=outcome,
                    error=error,
                )
            )

    async def claim_interrupted(self, stale_before: float) -> list[dict[str, Any]]:
        """Actions still ``started`` whose heartbeat stopped before ``stale_before``: the
        process running them died. Each is marked ``interrupted`` and returned once, to
        whichever process claims it first (one UPDATE … RETURNING: replicas claiming
        together neither share a row nor lock each other out)."""
        claim = (
            update(action_log)
            .where(action_log.c.outcome == "started", action_log.c.alive_at < stale_before)
            .values(outcome="interrupted")
            .returning(*action_log.c)
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(claim)).all()
        return sorted((dict(r._mapping) for r in rows), key=lambda r: r["id"])

    async def unclaim_interrupted(self, log_id: int) -> None:
        """Telling about an interrupted action failed: leave it for the next round."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(action_log)
                .where(action_log.c.id == log_id, action_log.c.outcome == "interrupted")
                .values(outcome="started")
            )

    async def actions_for(self, job_id: str) -> list[dict[str, Any]]:
        """The action log of a job, oldest first."""
        query = select(action_log).where(action_log.c.job_id == job_id).order_by(action_log.c.id)
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(query)).all()]

    # --- outbox --------------------------------------------------------------------------

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
        """Slack accepted the post: record it and what the channel now knows, together."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == entry_id)
                .values(state="posted", ts=ts, posted_at=now)
            )
            if watch_values:
                await conn.execute(
                    update(watches).where(watches.c.id == watch_id).values(**watch_values)
                )

    async def posted(self, watch_id: int, kind: str | None = None) -> list[tuple[str, str]]:
        """(kind, key) of what was posted for a watch, oldest first."""
        query = select(outbox.c.kind, outbox.c.key).where(
            outbox.c.watch_id == watch_id, outbox.c.state == "posted"
        )
        if kind is not None:
            query = query.where(outbox.c.kind == kind)
        async with self.engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(query.order_by(outbox.c.id))).all()]

    async def forget_posts(self, watch_id: int, kind: str) -> None:
        """Drop a kind of post from the record, so it can be made again (a new pause DM)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(outbox).where(outbox.c.watch_id == watch_id, outbox.c.kind == kind)
            )


def _wanted() -> Any:
    """A poll row that some active watch still wants."""
    return (
        select(watches.c.id)
        .where(
            watches.c.job_id == polls.c.job_id,
            watches.c.instance_id == polls.c.instance_id,
            watches.c.state == ACTIVE,
        )
        .exists()
    )


def _poll(row: Any) -> Poll:
    return Poll(
        job_id=row.job_id,
        instance_id=row.instance_id or None,
        status=row.status,
        job_json=row.job_json,
        next_poll_at=row.next_poll_at,
        errors=row.errors,
        counts_json=row.counts_json,
        counted_at=row.counted_at,
    )
