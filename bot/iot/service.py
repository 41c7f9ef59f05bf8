"""OtaService: what the Slack side calls. Coalesces identical concurrent reads into one
upstream call and keeps each read fresh for a few seconds, so a channel full of people
typing the same JobId costs one call of the account's quota."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from ..bounded import gather_bounded
from ..metrics import Metrics
from .client import MAX_PAGE_SIZE, REUPGRADE_BATCH, IotClient
from .errors import IotError
from .models import Firmware, JobResult, JobSummary, OtaTask, Page, TaskCounts
from .quota import Priority

# ListOTATaskByJob serves at most CurrentPage x PageSize <= 100,000 rows.
API_ROW_LIMIT = 100_000
# A bulk operation (every failed device, a device's batches, a re-upgrade) keeps this many
# calls in flight: enough to use the quota, few enough that another person's query waits
# behind a handful, not hundreds. Each operation has its own lane, so two people's bulk
# work interleaves in the quota's queue instead of one waiting for the other to finish.
BULK_CONCURRENCY = 4
# A device's batches: the API lists them per update package, so the product's newest
# packages are asked one by one, at most this many.
DEVICE_FIRMWARE_LIMIT = 20

T = TypeVar("T")


class CoalescingCache(Generic[T]):
    """In-flight coalescing plus a short time-to-live cache. Errors are not cached."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._fresh: dict[Hashable, tuple[float, T]] = {}
        self._inflight: dict[Hashable, asyncio.Task[T]] = {}

    async def get(
        self,
        key: Hashable,
        load: Callable[[], Awaitable[T]],
        *,
        fresh: bool = False,
        lane: Hashable = None,
        counted: Callable[[str], None] | None = None,
    ) -> T:
        """``lane`` keeps reads of different priorities apart in flight, so a person
        never waits in line behind a background read of the same thing. ``counted``
        hears the reads this cache answered: cache_hit, or coalesced (joined one under
        way); ``load`` counts the rest."""
        now = self._clock()
        if not fresh and key in self._fresh:
            stored_at, value = self._fresh[key]
            if now - stored_at < self.ttl:
                if counted:
                    counted("cache_hit")
                return value
        flight = (key, lane)
        task = self._inflight.get(flight)
        if counted and task is not None:
            counted("coalesced")
        if task is None:
            task = asyncio.ensure_future(self._load(key, flight, load))
            # Its error reaches whoever awaits it; if they all went away, it is not news.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._inflight[flight] = task
        # One impatient caller going away must not cancel the call the others wait for.
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, flight: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await load()
            now = self._clock()
            self._fresh = {k: v for k, v in self._fresh.items() if now - v[0] < self.ttl}
            self._fresh[key] = (now, value)
            return value
        finally:
            del self._inflight[flight]


@dataclass(frozen=True)
class Failures:
    """A batch's failed devices as read: every one up to ``limit``."""

    tasks: list[OtaTask]
    total: int  # as the API counted them on the first page
    request_ids: list[str]
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    limit: int = API_ROW_LIMIT  # the most that were to be read (OTAJOB_FAILED_MAX)

    @property
    def truncated(self) -> bool:
        """More failed than the limit lets us read. (A few fewer rows than ``total`` can
        also come from devices moving while the pages were read: that is not this.)"""
        return self.total > self.limit

    def reasons(self) -> list[tuple[str, int]]:
        """(TaskDesc, devices), most common first; ties by reason, for a stable order."""
        counts = Counter((t.task_desc or "").strip() for t in self.tasks)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class DeviceJobs:
    """A device's batches across its product's newest update packages."""

    jobs: list[JobSummary]
    firmware_checked: int
    firmware_total: int
    request_ids: list[str]
    firmware_failed: int = 0  # packages whose batches could not be read


# A failure listing is kept this long: paging through it, or its CSV, reads it once.
LISTING_SECONDS = 60.0


class SharedAnswers(Protocol[T]):
    """Reads shared by a deployment's replicas (bot/db/shared_reads.py): the answer and
    how it came, ``call`` (this replica read it) or ``shared`` (another's answer)."""

    async def read(self, key: str, load: Callable[[], Awaitable[T]]) -> tuple[T, str]: ...


class OtaService:
    def __init__(
        self,
        client: IotClient,
        *,
        cache_seconds: float = 5.0,
        default_instance_id: str | None = None,
        failed_max: int = 20_000,
        listing_seconds: float = LISTING_SECONDS,
        metrics: Metrics | None = None,
        shared_jobs: SharedAnswers[JobResult] | None = None,
        shared_failures: SharedAnswers[Failures] | None = None,
    ) -> None:
        self.client = client
        self._shared_jobs = shared_jobs
        self._shared_failures = shared_failures
        self._job_read = metrics.job_read if metrics is not None else None
        self.default_instance_id = default_instance_id
        self.failed_max = min(failed_max, API_ROW_LIMIT)
        self._jobs: CoalescingCache[JobResult] = CoalescingCache(cache_seconds)
        self._counts: CoalescingCache[TaskCounts] = CoalescingCache(cache_seconds)
        # Failure listings cost up to hundreds of calls; paging through one, or the CSV
        # after it, must not read it all again. Refresh asks with fresh=True.
        self._failures: CoalescingCache[Failures] = CoalescingCache(listing_seconds)

    def instance_for(self, instance_id: str | None) -> str | None:
        """The instance a call goes to: the one named, else the configured default."""
        return instance_id or self.default_instance_id

    async def get_job(
        self,
        job_id: str,
        instance_id: str | None = None,
        *,
        fresh: bool = False,
        priority: Priority = Priority.PERSON,
    ) -> JobResult:
        instance = self.instance_for(instance_id)

        async def read() -> JobResult:
            if self._job_read:
                self._job_read("call")
            return await self.client.query_ota_job(job_id, instance_id=instance, priority=priority)

        async def read_shared() -> JobResult:
            # Not in this process's cache: another replica's answer, or one call for all.
            assert self._shared_jobs is not None
            key = json.dumps(["QueryOTAJob", job_id, instance])
            result, how = await self._shared_jobs.read(key, read)
            if how == "shared" and self._job_read:
                self._job_read("shared")
            return result

        return await self._jobs.get(
            ("QueryOTAJob", job_id, instance),
            read_shared if self._shared_jobs is not None and not fresh else read,
            fresh=fresh,
            lane=priority,
            counted=self._job_read,
        )

    async def count_tasks(
        self,
        job_id: str,
        instance_id: str | None = None,
        *,
        fresh: bool = False,
        priority: Priority = Priority.PERSON,
    ) -> TaskCounts:
        instance = self.instance_for(instance_id)
        return await self._counts.get(
            ("ListOTATaskByJob", job_id, instance),
            lambda: self.client.count_tasks(job_id, instance_id=instance, priority=priority),
            fresh=fresh,
            lane=priority,
        )

    async def failures(
        self, job_id: str, instance_id: str | None = None, *, fresh: bool = False
    ) -> Failures:
        """Every failed device of a batch, up to ``failed_max``."""
        instance = self.instance_for(instance_id)

        async def read() -> Failures:
            return await self._read_failures(job_id, instance)

        async def read_shared() -> Failures:
            # Paging, or the CSV, on another replica: the listing it read, not a new one.
            assert self._shared_failures is not None
            key = json.dumps(["failures", job_id, instance])
            return (await self._shared_failures.read(key, read))[0]

        return await self._failures.get(
            ("failures", job_id, instance),
            read_shared if self._shared_failures is not None and not fresh else read,
            fresh=fresh,
        )

    async def _read_failures(self, job_id: str, instance: str | None) -> Failures:
        def page(n: int) -> Callable[[], Awaitable[Page]]:
            return lambda: self.client.list_tasks(
                job_id, status="FAILED", page=n, size=MAX_PAGE_SIZE, instance_id=instance
            )

        first = await page(1)()
        wanted = min(first.total, self.failed_max)
        pages = range(2, -(-wanted // MAX_PAGE_SIZE) + 1)
        rest = await gather_bounded((page(n) for n in pages), BULK_CONCURRENCY)
        tasks: dict[str, OtaTask] = {}
        request_ids = []
        for p in (first, *rest):
            request_ids.append(p.request_id or "")
            for task in p.items:
                # Pages are read while devices move: a device seen twice counts once.
                tasks.setdefault(task.task_id or f"row{len(tasks)}", task)
        return Failures(
            tasks=list(tasks.values())[:wanted],
            total=first.total,
            request_ids=[r for r in request_ids if r],
            limit=self.failed_max,
        )

    async def jobs_by_firmware(self, firmware_id: str, instance_id: str | None = None) -> Page:
        """A package's batches, newest first (the first 100)."""
        page = await self.client.list_jobs_by_firmware(
            firmware_id, instance_id=self.instance_for(instance_id)
        )
        page.items.sort(key=lambda j: j.created_ts, reverse=True)
        return page

    async def jobs_by_device(
        self,
        product_key: str,
        device_name: str,
        firmware_id: str | None = None,
        instance_id: str | None = None,
    ) -> DeviceJobs:
        """ListOTAJobByDevice needs a FirmwareId: without one, ask about each of the
        product's newest DEVICE_FIRMWARE_LIMIT packages, concurrently."""
        instance = self.instance_for(instance_id)
        request_ids: list[str] = []
        if firmware_id:
            firmware_ids, total = [firmware_id], 1
        else:
            listing = await self.client.list_firmware(product_key, instance_id=instance)
            request_ids.append(listing.request_id or "")
            packages: list[Firmware] = sorted(
                (f for f in listing.items if f.firmware_id),
                key=lambda f: f.utc_create.timestamp() if f.utc_create else 0.0,
                reverse=True,
            )
            firmware_ids = [
                f.firmware_id for f in packages[:DEVICE_FIRMWARE_LIMIT] if f.firmware_id
            ]
            total = listing.total

        pages = await gather_bounded(
            (
                lambda fid=fid: self.client.list_jobs_by_device(
                    product_key, device_name, fid, instance_id=instance
                )
                for fid in firmware_ids
            ),
            BULK_CONCURRENCY,
            return_exceptions=True,
        )
        errors = [r for r in pages if isinstance(r, BaseException)]
        # One package's refusal (deleted meanwhile, say) must not hide the others' batches;
        # only when every one was refused is that the answer.
        if errors and (
            len(errors) == len(pages) or not all(isinstance(e, IotError) for e in errors)
        ):
            raise errors[0]
        jobs: dict[str, JobSummary] = {}
        for result in pages:
            if isinstance(result, BaseException):
                continue
            request_ids.append(result.request_id or "")
            for job in result.items:
                jobs.setdefault(job.job_id or f"row{len(jobs)}", job)
        ordered = sorted(jobs.values(), key=lambda j: j.created_ts, reverse=True)
        return DeviceJobs(
            ordered,
            len(firmware_ids),
            total,
            [r for r in request_ids if r],
            firmware_failed=len(errors),
        )

    async def cancel_strategy(self, job_id: str, instance_id: str | None = None) -> str | None:
        """CancelOTAStrategyByJob (a dynamic batch stops taking new devices); its RequestId.
        Writes are never cached or coalesced."""
        return await self.client.cancel_strategy(job_id, instance_id=self.instance_for(instance_id))

    async def cancel_tasks(
        self, job_id: str, kinds: frozenset[str], instance_id: str | None = None
    ) -> str | None:
        """CancelOTATaskByJob for the task kinds named (see client.CANCEL_FLAGS)."""
        instance = self.instance_for(instance_id)
        return await self.client.cancel_tasks(job_id, kinds, instance_id=instance)

    async def reupgrade(
        self, job_id: str, task_ids: list[str], instance_id: str | None = None
    ) -> list[tuple[list[str], str | BaseException | None]]:
        """ReupgradeOTATask for many tasks, REUPGRADE_BATCH per call, with at most
        BULK_CONCURRENCY calls in flight (thousands of devices must not hold the whole
        quota). Returns each batch with its RequestId or its error, in order."""
        instance = self.instance_for(instance_id)
        batches = [
            task_ids[i : i + REUPGRADE_BATCH] for i in range(0, len(task_ids), REUPGRADE_BATCH)
        ]

        results = await gather_bounded(
            (
                lambda batch=batch: self.client.reupgrade_tasks(job_id, batch, instance_id=instance)
                for batch in batches
            ),
            BULK_CONCURRENCY,
            return_exceptions=True,
        )
        return list(zip(batches, results, strict=True))
