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
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from slack_sdk.errors import SlackApiError

from ..iot.errors import IotError, error_kind
from ..iot.models import TASK_STATUSES, Counts, JobResult, OtaJob, TaskCounts
from ..iot.quota import Priority
from ..iot.service import OtaService
from ..job_ref import JobRef
from ..render import Message, Renderer, job_card
from .alerts import AlertRule, step
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
    ALERT_SET = "alert_set"


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
        self._alerted_jobs = 0
        self._inflight: dict[tuple[str, str | None], asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Weak: a lock lives while someone holds or awaits it, so `unwatch <any JobId>`
        # (no API call needed) cannot grow this without end.
        self._locks: weakref.WeakValueDictionary[tuple[str, str | None], asyncio.Lock]
        self._locks = weakref.WeakValueDictionary()

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
        alert: AlertRule | None = None,
        notify: tuple[str, ...] = (),
        alert_off: bool = False,
    ) -> WatchResult:
        """Subscribe a channel. IotError propagates: the caller shows it to the person.
        Watching again with an alert sets (or replaces) the existing watch's alert."""
        instance = self.service.instance_for(instance_id)
        result = await self.service.get_job(job_id, instance, fresh=True)
        async with self._lock(job_id, instance):
            if result.job.is_finished:
                existing = await self.store.live_watch(job_id, instance, channel_id)
                if existing is not None:  # e.g. paused while the batch finished
                    await self._end(existing, "finished", result=result)
                return WatchResult(Outcome.FINISHED, result)
            now = self._clock()
            watch, created = await self.store.add_watch(
                job_id=job_id,
                instance_id=instance,
                channel_id=channel_id,
                created_by=user_id,
                created_by_name=user_name,
                told_status=result.job.job_status,
                only=only,
                quiet=quiet,
                now=now,
                expires_at=now + self.settings.max_days * DAY,
                alert_rule=alert.text if alert else None,
                notify=notify,
            )
            outcome = Outcome.CREATED if created else Outcome.EXISTS
            if (
                not created
                and alert is not None
                and (watch.alert_rule != alert.text or watch.notify != notify)
            ):
                await self.store.set_watch(
                    watch.id, alert_rule=alert.text, notify=notify, alerting=False
                )
                watch = await self.store.get_watch(watch.id) or watch
                outcome = Outcome.ALERT_SET
            elif not created and alert_off and watch.alert_rule:
                await self.store.set_watch(watch.id, alert_rule=None, notify=(), alerting=False)
                watch = await self.store.get_watch(watch.id) or watch
                outcome = Outcome.ALERT_SET
            await self._count_jobs()
            if not created and watch.state == PAUSED:
                await self.store.set_watch(watch.id, state=ACTIVE, note=None)
                await self.store.forget_posts(watch.id, "dm")  # a new pause may DM again
                watch = await self.store.get_watch(watch.id) or watch
                outcome = Outcome.RESUMED
            if outcome != Outcome.EXISTS or watch.card_ts is None:
                try:
                    await self._post_card(watch, result)
                except ChannelUnavailable as exc:
                    await self.store.set_watch(watch.id, state=PAUSED, note=exc.error)
                    return WatchResult(Outcome.CHANNEL_UNAVAILABLE, result, watch, exc.error)
            await self._record(job_id, instance, result)
        self._wake.set()
        return WatchResult(outcome, result, await self.store.get_watch(watch.id))

    async def unwatch(
        self, *, job_id: str, instance_id: str | None, channel_id: str, user_name: str
    ) -> Watch | None:
        instance = self.service.instance_for(instance_id)
        async with self._lock(job_id, instance):  # not in the middle of a poll's posts
            watch = await self.store.live_watch(job_id, instance, channel_id)
            if watch is None:
                return None
            await self._end(watch, "unwatched", user_name=user_name)
        return watch

    def _lock(self, job_id: str, instance_id: str | None) -> asyncio.Lock:
        """One job's watches change under one lock: a poll, a watch and an unwatch of the
        same job never interleave their posts."""
        lock = self._locks.get((job_id, instance_id))
        if lock is None:
            lock = self._locks[(job_id, instance_id)] = asyncio.Lock()
        return lock

    async def _count_jobs(self) -> None:
        self._polled_jobs, self._alerted_jobs = await self.store.budget_counts()

    def interval(self) -> float:
        """The real time between two polls of a job, given how many jobs share the budget.
        A job with an alert costs eight calls a poll (its device counts too). A poll holds
        its quota place a little over a second, and final summaries cost seven more
        calls: plan on 80 % of the share."""
        calls = self._polled_jobs + len(TASK_STATUSES) * self._alerted_jobs
        spread = calls / (self.settings.budget_per_second * 0.8)
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
            await asyncio.gather(*late, return_exceptions=True)

    async def run(self) -> None:
        while not self._stopping.is_set():
            delay = 1.0
            try:
                await self.tick()
                if self._has_room():
                    next_due = await self.store.next_due()
                    if next_due is not None:
                        delay = min(max(next_due - self._clock(), 0.05), 1.0)
            except Exception:  # the loop must outlive any one bad tick (a database hiccup)
                log.exception("watcher tick failed")
            # Woken early when a poll finishes (room for the next) or a watch is added.
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _room(self) -> int:
        """Polls that may start now: at most two seconds' worth in flight, so a backlog
        (after a restart, say) drains in order instead of piling up in the limiter."""
        return max(1, int(self.settings.budget_per_second * 2)) - len(self._inflight)

    def _has_room(self) -> bool:
        return self._room() > 0

    async def tick(self) -> list[asyncio.Task[None]]:
        """Start the polls that are due; returns their tasks (tests await them)."""
        room = self._room()
        started: list[asyncio.Task[None]] = []
        if room <= 0:
            return started
        now = self._clock()
        await self._count_jobs()
        for watch in await self.store.expired_watches(now):
            async with self._lock(watch.job_id, watch.instance_id):
                await self._end(watch, "expired")
        for poll in await self.store.due_polls(now, room):
            key = (poll.job_id, poll.instance_id)
            if key in self._inflight or not await self.store.claim_poll(poll, now, self._lease()):
                continue
            task = asyncio.create_task(self._poll(poll.job_id, poll.instance_id, poll.errors))
            self._inflight[key] = task
            task.add_done_callback(lambda _, key=key: self._poll_done(key))
            started.append(task)
        return started

    def _poll_done(self, key: tuple[str, str | None]) -> None:
        self._inflight.pop(key, None)
        self._wake.set()

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

    def _lease(self) -> float:
        """How long a claimed poll stays claimed. A poll records its real next time when
        it ends; only if the process died mid-poll does the lease run out, and then the
        job is polled again (by this process after a restart, or by another one)."""
        return min(max(2 * self.settings.poll_seconds, 5.0), 120.0)

    def _backoff(self, errors: int) -> float:
        """Exponential, with jitter, never below the normal interval's cap."""
        interval = self.interval()
        cap = max(self.settings.max_backoff_seconds, interval)
        return min(interval * 2 ** max(errors - 1, 0), cap) * self._rng.uniform(0.9, 1.1)

    async def poll(self, job_id: str, instance_id: str | None, errors: int = 0) -> None:
        if not await self.store.live_watches(job_id=job_id, instance_id=instance_id, state=ACTIVE):
            return
        try:
            result = await self.service.get_job(
                job_id, instance_id, fresh=True, priority=Priority.BACKGROUND
            )
        except IotError as exc:
            async with self._lock(job_id, instance_id):
                await self._poll_failed(job_id, instance_id, errors, exc)
            return
        counts = _Once(lambda: self._read_counts(job_id, instance_id))
        async with self._lock(job_id, instance_id):
            # Read the watches again: one may have been unwatched while the API answered.
            for watch in await self.store.live_watches(
                job_id=job_id, instance_id=instance_id, state=ACTIVE
            ):
                try:
                    # The alert first: a batch that crossed the line and finished between
                    # two polls still alerts, and the card's edit below has the counts.
                    if watch.alert_rule and watch.card_ts:
                        await self._check_alert(watch, result, counts)
                    await self._advance(watch, result, counts)
                except ChannelUnavailable as exc:
                    await self._pause(watch, exc.error)
                except SlackApiError as exc:  # 429s are retried by slack_sdk; others next poll
                    error = exc.response.get("error")
                    log.warning("posting for watch %d failed: %s", watch.id, error)
            await self._record(job_id, instance_id, result)

    async def _poll_failed(
        self, job_id: str, instance_id: str | None, errors: int, exc: IotError
    ) -> None:
        if error_kind(exc) == "not_found":
            for watch in await self.store.live_watches(job_id=job_id, instance_id=instance_id):
                await self._end(watch, "job_gone", error=exc)
            return
        # A passing problem on Alibaba Cloud's side: no noise in the channel.
        log.warning("poll of %s failed (%d in a row): %s", job_id, errors + 1, exc)
        await self._record_error(job_id, instance_id, errors)

    async def _record(self, job_id: str, instance_id: str | None, result: JobResult) -> None:
        """Remember what was read; the next poll is timed from now, after the answer."""
        now = self._clock()
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

    async def _advance(self, watch: Watch, result: JobResult, counts: _Once) -> None:
        if watch.card_ts is None:  # the card was never confirmed: post (or find) it first
            await self._post_card(watch, result)
            watch = await self.store.get_watch(watch.id) or watch
        shown = watch.card_shows
        transitions = diff(watch.told_status, result.job)
        for transition in transitions:
            if wanted(transition, watch.only):
                await self._post_transition(watch, result, transition, counts)
            else:
                await self.store.set_watch(watch.id, told_status=transition.to_status)
        finished = result.job.is_finished
        status = result.job.job_status
        if transitions or shown != status:
            known = counts.peek()
            card = self.card(watch, result, ended=finished, counts=Counts(known) if known else None)
            if await self.poster.update(watch.channel_id, watch.card_ts or "", card):
                await self.store.set_watch(watch.id, card_status=status)
            elif finished:
                # Slack would not edit the card (rate limited): the watch stays until the
                # card shows the end, so a channel never keeps a card that says "running".
                return
        if finished:
            await self.store.end_watch(watch.id, "finished", self._clock())

    async def _read_counts(self, job_id: str, instance_id: str | None) -> TaskCounts:
        counts = await self.service.count_tasks(
            job_id, instance_id, fresh=True, priority=Priority.BACKGROUND
        )
        await self.store.record_counts(
            job_id, instance_id, json.dumps(counts.counts), self._clock()
        )
        return counts

    async def _check_alert(self, watch: Watch, result: JobResult, counts: _Once) -> None:
        """Post an alert when the failure count crosses the watch's threshold; remember
        that it did, so it posts again only after a recovery."""
        rule = AlertRule.parse(watch.alert_rule or "")
        if rule is None:
            return
        try:
            task_counts = await counts()
        except IotError as exc:  # no counts this time: judge at the next poll
            log.warning("counts for the alert on watch %d: %s", watch.id, exc)
            return
        current = await self.store.get_watch(watch.id) or watch
        decision = step(rule, task_counts, current.alerting)
        if not (decision.fire or decision.recovered):
            return
        # A recovery is a quiet note in the thread: no mention, no broadcast.
        number = current.alerts_sent + (1 if decision.fire else 0)
        message = self.renderer.render(
            "alert",
            job=result.job,
            job_id=watch.job_id,
            rule=rule,
            counts=task_counts,
            notify=current.notify if decision.fire else (),
            recovered=decision.recovered,
            demo=self.demo,
        )
        await self._deliver(
            current,
            "alert",
            f"alert-{number}" if decision.fire else f"recovered-{number}",
            message,
            thread_ts=current.card_ts,
            broadcast=decision.fire,
            watch_values={"alerting": decision.alerting, "alerts_sent": number},
        )
        if current.card_ts:
            card = self.card(current, result, counts=Counts(task_counts))
            await self.poster.update(current.channel_id, current.card_ts, card)

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

    def card(
        self, watch: Watch, result: JobResult, *, ended: bool = False, counts: Counts | None = None
    ) -> Message:
        """The watched card: the job card plus how it is watched (or that it no longer is).
        ``counts`` None leaves device results off."""
        return job_card(
            self.renderer,
            result,
            ref=JobRef(watch.job_id, watch.instance_id, watch_id=watch.id),
            instance_id=watch.instance_id,
            demo=self.demo,
            buttons=("refresh",),
            counts=counts,
            watching={"watch": watch, "interval": self.interval(), "ended": ended},
        )

    async def _post_card(self, watch: Watch, result: JobResult) -> None:
        shows = {"card_status": result.job.job_status}
        card = self.card(watch, result)
        await self._deliver(watch, "card", "card", card, thread_ts=None, watch_values=shows)

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
        watch_values: dict[str, Any] | None = None,
    ) -> str:
        """Post once: record the intent, look for an earlier attempt, post, record.
        ``watch_values`` are stored on the watch together with the post's record."""
        now = self._clock()
        values: dict[str, Any] = dict(watch_values or {})
        if told_status is not None:
            values["told_status"] = told_status
        entry = await self.store.begin_post(watch.id, kind, key, now)
        if entry.state == "posted" and entry.ts:
            # e.g. a status that went back and forth; a card already posted shows what it
            # showed then, not what this call would have posted.
            values.pop("card_status", None)
            if values:
                await self.store.set_watch(watch.id, **values)
            return entry.ts
        marker = {"watch": watch.id, "kind": kind, "key": key}
        ts = None
        if not entry.fresh:  # an earlier attempt may have reached Slack before a crash
            ts = await self.poster.find(
                watch.channel_id, marker, thread_ts=thread_ts, since=entry.created_at
            )
        if ts is None:
            ts = await self.poster.post(
                watch.channel_id, message, marker=marker, thread_ts=thread_ts, broadcast=broadcast
            )
        if kind == "card":
            values["card_ts"] = ts
        await self.store.finish_post(entry.id, ts, self._clock(), watch_id=watch.id, **values)
        return ts

    async def _end(
        self, watch: Watch, reason: str, *, result: JobResult | None = None, **context: object
    ) -> None:
        """End a watch, saying why in its thread (when it has one), and mark its card."""
        if watch.card_ts and reason != "finished":
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
        if watch.card_ts:
            result = result or await self._last_read(watch)
            if result is not None:
                with contextlib.suppress(ChannelUnavailable, SlackApiError):
                    card = self.card(watch, result, ended=True)
                    await self.poster.update(watch.channel_id, watch.card_ts, card)
        await self.store.end_watch(watch.id, reason, self._clock())

    async def _last_read(self, watch: Watch) -> JobResult | None:
        """The job as last polled, for editing a card without another API call."""
        poll = await self.store.get_poll(watch.job_id, watch.instance_id)
        if poll is None or not poll.job_json:
            return None
        data = json.loads(poll.job_json)
        return JobResult(job=OtaJob.parse(data), raw=data)

    async def _pause(self, watch: Watch, error: str) -> None:
        """The channel cannot take posts: pause, and tell the person who set it up how to fix it."""
        await self.store.set_watch(watch.id, state=PAUSED, note=error)
        entry = await self.store.begin_post(watch.id, "dm", error, self._clock())
        if not entry.fresh:  # already told about this pause
            return
        message = self.renderer.render("watch_paused", watch=watch, error=error, demo=self.demo)
        if await self.poster.direct_message(watch.created_by, message):
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

    def peek(self) -> TaskCounts | None:
        """The counts if this poll read them (for the card), without reading them."""
        if self._task is None or not self._task.done() or self._task.exception():
            return None
        return self._task.result()
