"""Reads shared by the replicas of a deployment on PostgreSQL (a job, a batch's failed
devices): identical reads within their cache window cost one read of the API, whichever
replicas they arrive on.

Each replica first looks in its own short cache and joins a read already under way in
its process (bot/iot/service.py). Past that, the replica claims the read in the
``job_reads`` table, in one upsert on the database's clock, which succeeds only when no
one holds a fresh answer or a live claim. The claimant calls the API and stores the
answer; another replica asking meanwhile waits for that answer (looking every 50 ms)
instead of calling too. A claimant that dies or fails leaves its claim to lapse or
clears it, and the next asker reads for itself. Errors are not shared: whoever asks
next asks the API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..iot.models import JobResult, OtaJob, OtaTask
from ..iot.service import Failures

T = TypeVar("T")

NOW = "extract(epoch from clock_timestamp())"
CLAIM_SECONDS = 30.0  # longer than any read (the client's retry budget is 20 s)
LOOK_EVERY = 0.05

_CLAIM = text(
    f"""
    INSERT INTO job_reads (key, reading_until) VALUES (:key, {NOW} + :claim)
    ON CONFLICT (key) DO UPDATE SET reading_until = {NOW} + :claim
    WHERE (job_reads.reading_until IS NULL OR job_reads.reading_until <= {NOW})
      AND (job_reads.read_at IS NULL OR job_reads.read_at <= {NOW} - :ttl)
    RETURNING key
    """
)
_FRESH = text(f"SELECT body FROM job_reads WHERE key = :key AND read_at > {NOW} - :ttl")
_STORE = text(
    f"UPDATE job_reads SET body = :body, read_at = {NOW}, reading_until = NULL WHERE key = :key"
)
_GIVE_UP = text("UPDATE job_reads SET reading_until = NULL WHERE key = :key")


def dump_job(result: JobResult) -> str:
    return json.dumps(
        {
            "raw": result.raw,
            "request_id": result.request_id,
            "fetched_at": result.fetched_at.isoformat(),
        },
        ensure_ascii=False,
    )


def parse_job(body: str) -> JobResult:
    data = json.loads(body)
    return JobResult(
        job=OtaJob.parse(data["raw"]),
        raw=data["raw"],
        request_id=data["request_id"],
        fetched_at=datetime.fromisoformat(data["fetched_at"]),
    )


def dump_failures(failures: Failures) -> str:
    return json.dumps(
        {
            "tasks": [t.model_dump(mode="json", by_alias=True) for t in failures.tasks],
            "total": failures.total,
            "request_ids": failures.request_ids,
            "fetched_at": failures.fetched_at.isoformat(),
            "limit": failures.limit,
        },
        ensure_ascii=False,
    )


def parse_failures(body: str) -> Failures:
    data = json.loads(body)
    return Failures(
        tasks=[OtaTask.model_validate(t) for t in data["tasks"]],
        total=data["total"],
        request_ids=data["request_ids"],
        fetched_at=datetime.fromisoformat(data["fetched_at"]),
        limit=data["limit"],
    )


class SharedReads(Generic[T]):
    """Answers of one kind kept ``ttl`` seconds, written with ``dump``, read with ``parse``."""

    def __init__(
        self,
        engine: AsyncEngine,
        ttl: float,
        dump: Callable[[T], str],
        parse: Callable[[str], T],
    ) -> None:
        self._engine = engine
        self._ttl = ttl
        self._dump = dump
        self._parse = parse

    async def read(self, key: str, load: Callable[[], Awaitable[T]]) -> tuple[T, str]:
        """The answer for ``key`` and how it came: ``call`` (this replica asked the API)
        or ``shared`` (another replica's answer, within the cache window)."""
        while True:
            async with self._engine.begin() as conn:
                claimed = (
                    await conn.execute(
                        _CLAIM, {"key": key, "claim": CLAIM_SECONDS, "ttl": self._ttl}
                    )
                ).first()
                if claimed is None:
                    body = (await conn.execute(_FRESH, {"key": key, "ttl": self._ttl})).scalar()
                    if body is not None:
                        return self._parse(body), "shared"
            if claimed is not None:
                return await self._read_for_all(key, load), "call"
            await asyncio.sleep(LOOK_EVERY)  # another replica is reading it now

    async def _read_for_all(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await load()
        except BaseException:
            async with self._engine.begin() as conn:
                await conn.execute(_GIVE_UP, {"key": key})
            raise
        async with self._engine.begin() as conn:
            await conn.execute(_STORE, {"key": key, "body": self._dump(result)})
        return result
