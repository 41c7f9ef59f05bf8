"""The watches repository: a channel's watch of a job, and typed changes to one."""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, Final

from sqlalchemy import Update, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from .engine import Repository
from .polls import ensure_poll
from .schema import ACTIVE, ENDED, watches


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
    created_by_language: str | None = None  # for the DMs only its creator reads

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
            created_by_language=row.created_by_language,
        )


class _Unset(Enum):
    UNSET = "unset"


UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, kw_only=True)
class WatchChange:
    """What to change on a watch: each field left UNSET keeps its column as it is (None
    is a value: it empties the column). An unknown name is a TypeError, as for any call."""

    state: str | _Unset = UNSET
    note: str | _Unset | None = UNSET
    ended_at: float | _Unset | None = UNSET
    expires_at: float | _Unset = UNSET
    only: frozenset[str] | _Unset = UNSET  # stored as the column only_states
    quiet: bool | _Unset = UNSET
    card_ts: str | _Unset | None = UNSET
    told_status: str | _Unset | None = UNSET
    card_status: str | _Unset | None = UNSET
    alert_rule: str | _Unset | None = UNSET
    notify: tuple[str, ...] | _Unset = UNSET
    alerting: bool | _Unset = UNSET
    alerts_sent: int | _Unset = UNSET

    def columns(self) -> dict[str, Any]:
        """The changed columns of ``watches`` and their stored values."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values = {name: value for name, value in values.items() if value is not UNSET}
        if "only" in values:
            values["only_states"] = ",".join(sorted(values.pop("only")))
        if "notify" in values:
            values["notify"] = ",".join(values["notify"])
        return values


def watch_update(watch_id: int, change: WatchChange) -> Update | None:
    """The UPDATE a change makes to a watch (None: it changes nothing)."""
    values = change.columns()
    if not values:
        return None
    return update(watches).where(watches.c.id == watch_id).values(**values)


class WatchRepository(Repository):
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
        created_by_language: str | None = None,
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
            "created_by_language": created_by_language,
        }
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(insert(watches).values(**values))
                watch_id = result.inserted_primary_key[0]
                await ensure_poll(conn, job_id, instance_id, now)
        except IntegrityError:
            existing = await self.live_watch(job_id, instance_id, channel_id)
            if existing is None:  # ended between the insert and this read: a rare race
                raise
            return existing, False
        watch = await self.get_watch(watch_id)
        assert watch is not None
        return watch, True

    async def watch_states(self) -> dict[str, int]:
        """How many watches are in each state, ended ones left out (for /metrics)."""
        query = (
            select(watches.c.state, func.count())
            .where(watches.c.state != ENDED)
            .group_by(watches.c.state)
        )
        async with self.engine.connect() as conn:
            return {state: count for state, count in (await conn.execute(query)).all()}

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

    async def expired_watches(self, now: float) -> list[Watch]:
        """Live watches (active or paused) past their end date."""
        query = select(watches).where(watches.c.state != ENDED, watches.c.expires_at <= now)
        async with self.engine.connect() as conn:
            return [Watch.from_row(r) for r in (await conn.execute(query)).all()]

    async def change_watch(self, watch_id: int, change: WatchChange) -> None:
        statement = watch_update(watch_id, change)
        if statement is not None:
            async with self.engine.begin() as conn:
                await conn.execute(statement)

    async def set_watch(self, watch_id: int, **values: Any) -> None:
        """:meth:`change_watch` by column name (``only`` for only_states); an unknown name
        is a TypeError."""
        await self.change_watch(watch_id, WatchChange(**values))

    async def end_watch(self, watch_id: int, note: str, now: float) -> None:
        await self.change_watch(watch_id, WatchChange(state=ENDED, note=note, ended_at=now))
