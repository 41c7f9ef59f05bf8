"""The leases repository: a named claim that lasts a while, seen by every replica.

A lease is taken only if nobody holds it or the holder's time is up, in one statement
(an upsert whose update applies only to an expired row), on the database's clock, so
two replicas asking at the same moment get one yes. A replica that dies holding one
leaves it to expire.
"""

from __future__ import annotations

from sqlalchemy import delete, literal_column
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .engine import Repository
from .schema import leases

# The database's clock in UNIX seconds, on each dialect.
_NOW = {
    "postgresql": "extract(epoch from clock_timestamp())",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


class LeaseRepository(Repository):
    def _now(self):  # type: ignore[no-untyped-def]
        return literal_column(_NOW[self.engine.dialect.name])

    async def take_lease(self, name: str, seconds: float) -> bool:
        """True, and the lease is ours for ``seconds``, unless someone holds it now."""
        now = self._now()
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(leases).values(name=name, until=now + seconds)
        statement = statement.on_conflict_do_update(
            index_elements=[leases.c.name],
            set_={"until": now + seconds},
            where=leases.c.until <= now,
        ).returning(leases.c.name)
        async with self.engine.begin() as conn:
            return (await conn.execute(statement)).first() is not None

    async def drop_lease(self, name: str) -> None:
        """Give a lease back before its time (the work it guarded is done)."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(leases).where(leases.c.name == name))
