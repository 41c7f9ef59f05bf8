"""The watcher: polls watched batches and tells each channel about every transition.

One poll per job serves every channel watching it. Polls run at background priority and
within the watchers' share of the quota; when more jobs are watched than that share can
poll every ``poll_seconds``, every job's interval stretches by the same factor, and jobs
are polled in order of when they are due, so none starves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from slack_sdk.errors import SlackApiError

from ..iot.errors import IotError, error_kind
from ..iot.models import JobResult, OtaJob, TaskCounts
from ..iot.quota import Priority
from ..iot.service import OtaService
from ..job_ref import JobRef
from ..render import Message, Renderer
from .poster import ChannelUnavailable, SlackPoster
from .store import ACTIVE, PAUSED, Store, Watch
from .transitions import PLANNED, Transition, diff, wanted

log = logging.getLogger("otajob.watch")
DAY = 86400.0


@dataclass(frozen=True)
class WatchSettings:
    poll_seconds: float = 60.0
    max_days: float = 14.0
    budget_per_second: float = 5.0  # the watchers' share of the quota, in calls per second
    planned_recheck_seconds: float = 900.0  # a scheduled batch is also checked this often
    max_backoff_seconds: float = 900.0
    shutdown_seconds: float = 10.0


class Outcome(Enum):
    CREATED = "created"
    RESUMED = "resumed"
    EXISTS = "exists"
    FINISHED = "finished"
    CHANNEL_UNAVAILABLE = "channel_unavailable"


@dataclass(frozen=True)
class WatchResult:
    outcome: Outcome
    job: JobResult
    watch: Watch | None = None
    error: str | None = None


class Watcher:
    def __init__(
        self,
        store: Store,
        service: OtaService,
        renderer: Renderer,
        poster: SlackPoster,
        settings: WatchSettings,
        *,
        demo: bool = False,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.service = service
        self.renderer = renderer
        self.poster = poster
        self.settings = settings
        self.demo = demo
        self._clock = clock
        self._rng = rng or random.Random()
        self._polled_jobs = 0
        self._inflight: dict[tuple[str, str | None], asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- what people ask for -------------------------------------------------------------

    async def watch(
        self,
        *,
        job_id: str,
        instance_id: str | None,
        channel_id: str,
        user_id: str,
        user_name: str,
        only: frozenset[str] = frozenset(),
        quiet: bool = False,
    ) -> WatchResult:
        """Subscribe a channel. IotError propagates: the caller shows it to the person."""
        result = await self.service.get_job(job_id, instance_id, fresh=True)
        if result.job.is_finished:
            return WatchResult(Outcome.FINISHED, result)
        now = self._clock()
        self._polled_jobs = await self.store.count_polled_jobs() + 1
        watch, created = await self.store.add_watch(
            job_id=job_id,
            instance_id=self.service.instance_for(instance_id),
            channel_id=channel_id,
            created_by=user_id,
            created_by_name=user_name,
            told_status=result.job.job_status,
            only=only,
            quiet=quiet,
            now=now,
            expires_at=now + self.settings.max_days * DAY,
        )
        outcome = Outcome.CREATED if created else Outcome.EXISTS
        if not created and watch.state == PAUSED:
            await self.store.set_watch(watch.id, state=ACTIVE, note=None)
            watch = await self.store.get_watch(watch.id) or watch
            outcome = Outcome.RESUMED
        if outcome != Outcome.EXISTS or watch.card_ts is None:
            try:
                await self._post_card(watch, result)
            except ChannelUnavailable as exc:
                await self.store.set_watch(watch.id, state=PAUSED, note=exc.error)
                return WatchResult(Outcome.CHANNEL_UNAVAILABLE, result, watch, exc.error)
        await self._record(job_id, watch.instance_id, result, now)
        self._wake.set()
        return WatchResult(outcome, result, await self.store.get_watch(watch.id))

    async def unwatch(
        self, *, job_id: str, instance_id: str | None, channel_id: str, user_name: str
    ) -> Watch | None:
        instance = self.service.instance_for(instance_id)
        watch = await self.store.live_watch(job_id, instance, channel_id)
        if watch is None:
            return None
        await self._end(watch, "unwatched", user_name=user_name)
        return watch

    def interval(self) -> float:
        """The real time between two polls of a job, given how many jobs share the budget."""
        spread = self._polled_jobs / self.settings.budget_per_second
        return max(self.settings.poll_seconds, spread)

    # --- the loop ------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        """Stop polling; let polls (and their posts) under way finish, within a bound."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._inflight:
            _, late = await asyncio.wait(
                list(self._inflight.values()), timeout=self.settings.shutdown_seconds
            )
            for task in late:
                task.cancel()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:  # the loop must outlive any one bad tick (a database hiccup)
                log.exception("watcher tick failed")
            delay = 1.0
            next_due = await self._next_due()
            if next_due is not None:
                delay = min(max(next_due - self._clock(), 0.05), 1.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _next_due(self) -> float | None:
        try:
            return await self.store.next_due()
        except Exception:
            return None

    async def tick(self) -> list[asyncio.Task[None]]:
        """Start the polls that are due; returns their tasks (tests await them)."""
        now = self._clock()
        self._polled_jobs = await self.store.count_polled_jobs()
        batch = max(1, int(self.settings.budget_per_second * 2))
        started = []
        for poll in await self.store.due_polls(now, batch + len(self._inflight)):
            key = (poll.job_id, poll.instance_id)
            if key in self._inflight:
                continue
            task = asyncio.create_task(self._poll(poll.job_id, poll.instance_id, poll.errors))
            self._inflight[key] = task
            task.add_done_callback(lambda _, key=key: self._inflight.pop(key, None))
            started.append(task)
            if len(started) >= batch:
                break
        return started

    async def _poll(self, job_id: str, instance_id: str | None, errors: int) -> None:
        try:
            await self.poll(job_id, instance_id, errors)
        except Exception:
            log.exception("poll of %s failed", job_id)
            with contextlib.suppress(Exception):
                await self._record_error(job_id, instance_id, errors)

    async def _record_error(self, job_id: str, instance_id: str | None, errors: int) -> None:
        """Count the failure and push the next poll back, exponentially."""
        now = self._clock()
        await self.store.record_poll(
            job_id, instance_id, next_poll_at=now + self._backoff(errors + 1), now=now, error=True
        )

    def _backoff(self, errors: int) -> float:
        return min(self.interval() * 2 ** max(errors - 1, 0), self.settings.max_backoff_seconds)

    async def poll(self, job_id: str, instance_id: str | None, errors: int = 0) -> None:
        watches = await self.store.live_watches(
            job_id=job_id, instance_id=instance_id, state=ACTIVE
        )
        if not watches:
            return
        now = self._clock()
        try:
            result = await self.service.get_job(
                job_id, instance_id, fresh=True, priority=Priority.BACKGROUND
            )
        except IotError as exc:
            if error_kind(exc) == "not_found":
                for watch in watches:
                    await self._end(watch, "job_gone", error=exc)
                return
            # A passing problem on Alibaba Cloud's side: no noise in the channel.
            log.warning("poll of %s failed (%d in a row): %s", job_id, errors + 1, exc)
            await self._record_error(job_id, instance_id, errors)
            return
        counts = _Once(
            lambda: self.service.count_tasks(
                job_id, instance_id, fresh=True, priority=Priority.BACKGROUND
            )
        )
        for watch in watches:
            try:
                await self._advance(watch, result, counts, now)
            except ChannelUnavailable as exc:
                await self._pause(watch, exc.error)
            except SlackApiError as exc:  # 429s are retried by slack_sdk; the rest next poll
                log.warning("posting for watch %d failed: %s", watch.id, exc.response.get("error"))
        await self._record(job_id, instance_id, result, now)

    async def _record(
        self, job_id: str, instance_id: str | None, result: JobResult, now: float
    ) -> None:
        job = result.job
        await self.store.record_poll(
            job_id,
            instance_id,
            next_poll_at=self._next_poll(job, now),
            now=now,
            status=job.job_status,
            job_json=json.dumps(result.raw, ensure_ascii=False),
        )

    def _next_poll(self, job: OtaJob, now: float) -> float:
        interval = self.interval()
        if job.job_status == PLANNED and job.utc_schedule_time is not None:
            start = job.utc_schedule_time.timestamp()
            if start > now:  # check just after the scheduled start, and now and then before
                return min(start + 5, now + max(interval, self.settings.planned_recheck_seconds))
        return now + interval * self._rng.uniform(0.9, 1.1)

    # --- one watch -----------------------------------------------------------------------

    async def _advance(self, watch: Watch, result: JobResult, counts: _Once, now: float) -> None:
        if watch.card_ts is None:  # the card was never confirmed: post (or find) it first
            await self._post_card(watch, result)
            watch = await self.store.get_watch(watch.id) or watch
        if now >= watch.expires_at:
            await self._end(watch, "expired")
            return
        transitions = diff(watch.told_status, result.job)
        for transition in transitions:
            if wanted(transition, watch.only):
                await self._post_transition(watch, result, transition, counts)
            else:
                await self.store.set_watch(watch.id, told_status=transition.to_status)
        if transitions:
            await self.poster.update(
                watch.channel_id, watch.card_ts or "", self._card(watch, result)
            )
        if result.job.is_finished:
            await self.store.end_watch(watch.id, "finished", now)

    async def _post_transition(
        self, watch: Watch, result: JobResult, transition: Transition, counts: _Once
    ) -> None:
        task_counts, counts_error = None, None
        if transition.final:
            try:
                task_counts = await counts()
            except IotError as exc:  # the summary says so rather than holding the post back
                counts_error = exc
        message = self.renderer.render(
            "transition",
            job=result.job,
            job_id=watch.job_id,
            t=transition,
            counts=task_counts,
            counts_error=counts_error,
            demo=self.demo,
        )
        await self._deliver(
            watch,
            "transition",
            transition.key,
            message,
            thread_ts=watch.card_ts,
            broadcast=transition.final and not watch.quiet,
            told_status=transition.to_status,
        )

    def _card(self, watch: Watch, result: JobResult) -> Message:
        return self.renderer.render(
            "job",
            job=result.job,
            job_id=watch.job_id,
            request_id=result.request_id,
            checked_at=result.fetched_at,
            instance_id=watch.instance_id,
            demo=self.demo,
            shared_by=None,
            buttons=("refresh",),
            button_value=JobRef(watch.job_id, watch.instance_id).to_value(),
            watching={"watch": watch, "interval": self.interval()},
        )

    async def _post_card(self, watch: Watch, result: JobResult) -> None:
        await self._deliver(watch, "card", "card", self._card(watch, result), thread_ts=None)

    async def _deliver(
        self,
        watch: Watch,
        kind: str,
        key: str,
        message: Message,
        *,
        thread_ts: str | None,
        broadcast: bool = False,
        told_status: str | None = None,
    ) -> str:
        """Post once: record the intent, look for an earlier attempt, post, record."""
        now = self._clock()
        entry = await self.store.begin_post(watch.id, kind, key, now)
        if entry.state == "posted" and entry.ts:
            return entry.ts
        marker = {"watch": watch.id, "kind": kind, "key": key}
        ts = None
        if not entry.fresh:  # an earlier attempt may have reached Slack before a crash
            ts = await self.poster.find(
                watch.channel_id, marker, thread_ts=thread_ts, since=watch.created_at
            )
        if ts is None:
            ts = await self.poster.post(
                watch.channel_id, message, marker=marker, thread_ts=thread_ts, broadcast=broadcast
            )
        values: dict[str, str] = {}
        if told_status is not None:
            values["told_status"] = told_status
        if kind == "card":
            values["card_ts"] = ts
        await self.store.finish_post(entry.id, ts, self._clock(), watch_id=watch.id, **values)
        return ts

    async def _end(self, watch: Watch, reason: str, **context: object) -> None:
        """End a watch, saying why in its thread (when it has one)."""
        if watch.card_ts:
            message = self.renderer.render(
                "watch_note",
                reason=reason,
                watch=watch,
                demo=self.demo,
                max_days=self.settings.max_days,
                **context,
            )
            with contextlib.suppress(ChannelUnavailable, SlackApiError):
                await self._deliver(watch, "note", reason, message, thread_ts=watch.card_ts)
        await self.store.end_watch(watch.id, reason, self._clock())

    async def _pause(self, watch: Watch, error: str) -> None:
        """The channel cannot take posts: pause, and tell the person who set it up how to fix it."""
        await self.store.set_watch(watch.id, state=PAUSED, note=error)
        entry = await self.store.begin_post(watch.id, "dm", error, self._clock())
        if not entry.fresh:
            return
        message = self.renderer.render("watch_paused", watch=watch, error=error, demo=self.demo)
        await self.poster.direct_message(watch.created_by, message)
        await self.store.finish_post(entry.id, "dm", self._clock(), watch_id=watch.id)


class _Once:
    """Device counts cost several calls: fetch them at most once per poll, and only if a
    final transition needs them."""

    def __init__(self, load: Callable[[], Awaitable[TaskCounts]]) -> None:
        self._load = load
        self._task: asyncio.Task[TaskCounts] | None = None

    async def __call__(self) -> TaskCounts:
        if self._task is None:
            self._task = asyncio.ensure_future(self._load())
        return await self._task
