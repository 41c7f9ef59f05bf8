"""The polls repository: one shared poll state per watched job, and what is due."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .engine import Repository
from .schema import ACTIVE, polls, watches

if TYPE_CHECKING:
    from .watches import Watch


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

    @classmethod
    def from_row(cls, row: Any) -> Poll:
        """A poll row as read (polled_at aside); instance_id "" is None."""
        values = {f.name: getattr(row, f.name) for f in fields(cls)}
        return cls(**{**values, "instance_id": row.instance_id or None})


async def ensure_poll(
    conn: AsyncConnection, job_id: str, instance_id: str | None, now: float
) -> None:
    """Create the job's poll row unless it exists (two channels may race to create it)."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(
        dialect_insert(polls)
        .values(job_id=job_id, instance_id=instance_id or "", next_poll_at=now, errors=0)
        .on_conflict_do_nothing()
    )


class PollRepository(Repository):
    async def due_polls(self, now: float, limit: int) -> list[Poll]:
        """Jobs whose next poll is due and that some active watch still wants."""
        query = (
            select(polls)
            .where(polls.c.next_poll_at <= now, _wanted())
            .order_by(polls.c.next_poll_at)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [Poll.from_row(r) for r in (await conn.execute(query)).all()]

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

    async def extend_claim(
        self, job_id: str, instance_id: str | None, claimed_until: float, until: float
    ) -> bool:
        """Hold a claimed poll until ``until``, if the claim is still the one taken (to
        ``claimed_until``): a poll slower than its lease (a slow Slack) is not taken over
        by another replica while it still posts. False once anything else moved it."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(polls)
                .where(_key(job_id, instance_id), polls.c.next_poll_at == claimed_until)
                .values(next_poll_at=until)
            )
        return result.rowcount == 1

    async def next_due(self) -> float | None:
        """When the next wanted poll is due (None: nothing is watched)."""
        query = select(func.min(polls.c.next_poll_at)).where(_wanted())
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar()

    async def get_poll(self, job_id: str, instance_id: str | None) -> Poll | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(polls).where(_key(job_id, instance_id)))).first()
        return Poll.from_row(row) if row else None

    async def polls_for(self, watched: list[Watch]) -> dict[tuple[str, str | None], Poll]:
        """The poll rows of several watches' jobs, in one query."""
        if not watched:
            return {}
        query = select(polls).where(polls.c.job_id.in_({w.job_id for w in watched}))
        async with self.engine.connect() as conn:
            rows = [Poll.from_row(r) for r in (await conn.execute(query)).all()]
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
        values: dict[str, Any] = {"next_poll_at": next_poll_at, "polled_at": now}
        if error:
            values["errors"] = polls.c.errors + 1
        else:
            values.update(errors=0, status=status, job_json=job_json)
        async with self.engine.begin() as conn:
            await conn.execute(update(polls).where(_key(job_id, instance_id)).values(**values))

    async def record_counts(
        self, job_id: str, instance_id: str | None, counts_json: str, now: float
    ) -> None:
        """The device counts last read for a job (the Home tab shows them)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(polls)
                .where(_key(job_id, instance_id))
                .values(counts_json=counts_json, counted_at=now)
            )

    async def poll_soon(
        self,
        job_id: str,
        at: float,
        *,
        alerted_only: bool = False,
        not_before_last_poll: float | None = None,
    ) -> int:
        """Bring the batch's next poll forward to ``at``, never later: a pushed message
        says it changed. Every instance's row of that JobId (the message names no
        instance); with ``alerted_only``, only where a watch has an alert (device results
        matter to nothing else); with ``not_before_last_poll``, never sooner than that
        many seconds after its last poll. Returns how many polls moved: 0 for a batch
        nobody watches, which then costs nothing more."""
        target: Any = at
        if not_before_last_poll is not None:
            earliest = func.coalesce(polls.c.polled_at, 0) + not_before_last_poll
            target = case((earliest > at, earliest), else_=at)
        conditions = [polls.c.job_id == job_id, polls.c.next_poll_at > target, _wanted()]
        if alerted_only:
            conditions.append(_alerted())
        async with self.engine.begin() as conn:
            statement = update(polls).where(*conditions).values(next_poll_at=target)
            result = await conn.execute(statement)
        return result.rowcount

    async def poll_all_by(self, at: float) -> int:
        """Every wanted poll due by ``at`` at the latest: after the subscription
        (re)connects (messages sent while it was away may be lost) or goes away (the
        safety net's long wait must not outlast it)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(polls).where(polls.c.next_poll_at > at, _wanted()).values(next_poll_at=at)
            )
        return result.rowcount

    async def budget_counts(self) -> tuple[int, int]:
        """(jobs, jobs with an alert) among the actively watched jobs that are not merely
        scheduled: what shares the poll budget (a scheduled batch is checked around its
        start time, rarely before; each poll of an alerted job also reads device counts).
        One query: the poll loop asks at every tick."""
        query = (
            select(func.count(), func.coalesce(func.sum(case((_alerted(), 1), else_=0)), 0))
            .select_from(polls)
            .where(_wanted(), func.coalesce(polls.c.status, "") != "PLANNED")
        )
        async with self.engine.connect() as conn:
            jobs, with_alerts = (await conn.execute(query)).one()
        return int(jobs or 0), int(with_alerts or 0)


def _key(job_id: str, instance_id: str | None) -> Any:
    """The poll row of a job."""
    return and_(polls.c.job_id == job_id, polls.c.instance_id == (instance_id or ""))


def _wanted(*also: Any) -> Any:
    """A poll row that some active watch still wants (and that matches ``also``)."""
    return (
        select(watches.c.id)
        .where(
            watches.c.job_id == polls.c.job_id,
            watches.c.instance_id == polls.c.instance_id,
            watches.c.state == ACTIVE,
            *also,
        )
        .exists()
    )


def _alerted() -> Any:
    """A poll row whose job some active watch has an alert on."""
    return _wanted(watches.c.alert_rule.is_not(None))
