"""One watch's lifecycle: subscribe, tell the channel each transition and alert, pause, end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from slack_sdk.errors import SlackApiError

from ..card_counts import Counts
from ..db import ACTIVE, PAUSED, Store, Watch, WatchChange
from ..iot.errors import IotError
from ..iot.models import JobResult, OtaJob
from ..iot.service import OtaService
from ..job_ref import JobRef
from ..render import Message, Renderer, job_card
from .alerts import AlertRule, step
from .budget import Budget, WatchSettings
from .counts import PollCounts
from .delivery import Delivery
from .poster import ChannelUnavailable, SlackPoster
from .transitions import Transition, diff, wanted

log = logging.getLogger("otajob.watch")
DAY = 86400.0


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


class Lifecycle:
    """Each watch from its first card to its end, under its job's lock."""

    def __init__(
        self,
        store: Store,
        service: OtaService,
        renderer: Renderer,
        poster: SlackPoster,
        delivery: Delivery,
        budget: Budget,
        settings: WatchSettings,
        wake: asyncio.Event,
        *,
        demo: bool,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.service = service
        self.renderer = renderer
        self.poster = poster
        self.delivery = delivery
        self.budget = budget
        self.settings = settings
        self._wake = wake  # set when a watch is added: the scheduler looks for due polls
        self.demo = demo
        self._clock = clock
        # Weak: a lock lives while someone holds or awaits it, so `unwatch <any JobId>`
        # (no API call needed) cannot grow this without end.
        self.locks: weakref.WeakValueDictionary[tuple[str, str | None], asyncio.Lock]
        self.locks = weakref.WeakValueDictionary()

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
        async with self.lock(job_id, instance):
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
                change = WatchChange(alert_rule=alert.text, notify=notify, alerting=False)
                await self.store.change_watch(watch.id, change)
                watch = await self.store.get_watch(watch.id) or watch
                outcome = Outcome.ALERT_SET
            elif not created and alert_off and watch.alert_rule:
                await self.store.change_watch(
                    watch.id, WatchChange(alert_rule=None, notify=(), alerting=False)
                )
                watch = await self.store.get_watch(watch.id) or watch
                outcome = Outcome.ALERT_SET
            await self.budget.count_jobs()
            if not created and watch.state == PAUSED:
                await self.store.change_watch(watch.id, WatchChange(state=ACTIVE, note=None))
                await self.store.forget_posts(watch.id, "dm")  # a new pause may DM again
                watch = await self.store.get_watch(watch.id) or watch
                outcome = Outcome.RESUMED
            if outcome != Outcome.EXISTS or watch.card_ts is None:
                try:
                    await self.post_card(watch, result)
                except ChannelUnavailable as exc:
                    await self.store.change_watch(
                        watch.id, WatchChange(state=PAUSED, note=exc.error)
                    )
                    return WatchResult(Outcome.CHANNEL_UNAVAILABLE, result, watch, exc.error)
            await self.budget.record(job_id, instance, result)
        self._wake.set()
        return WatchResult(outcome, result, await self.store.get_watch(watch.id))

    async def unwatch(
        self, *, job_id: str, instance_id: str | None, channel_id: str, user_name: str
    ) -> Watch | None:
        instance = self.service.instance_for(instance_id)
        async with self.lock(job_id, instance):  # not in the middle of a poll's posts
            watch = await self.store.live_watch(job_id, instance, channel_id)
            if watch is None:
                return None
            await self._end(watch, "unwatched", user_name=user_name)
        return watch

    def lock(self, job_id: str, instance_id: str | None) -> asyncio.Lock:
        """One job's watches change under one lock: a poll, a watch and an unwatch of the
        same job never interleave their posts."""
        lock = self.locks.get((job_id, instance_id))
        if lock is None:
            lock = self.locks[(job_id, instance_id)] = asyncio.Lock()
        return lock

    # --- a poll's read, for every watch of the job (under the job's lock) ----------------

    async def advance(self, job_id: str, instance_id: str | None, result: JobResult) -> None:
        """Tell each active watch of the job what this read shows."""
        counts = PollCounts(self.service, self.store, job_id, instance_id, clock=self._clock)
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

    async def job_gone(self, job_id: str, instance_id: str | None, exc: IotError) -> None:
        for watch in await self.store.live_watches(job_id=job_id, instance_id=instance_id):
            await self._end(watch, "job_gone", error=exc)

    async def expire(self, now: float) -> None:
        for watch in await self.store.expired_watches(now):
            async with self.lock(watch.job_id, watch.instance_id):
                await self._end(watch, "expired")

    # --- one watch -----------------------------------------------------------------------

    async def _advance(self, watch: Watch, result: JobResult, counts: PollCounts) -> None:
        if watch.card_ts is None:  # the card was never confirmed: post (or find) it first
            await self.post_card(watch, result)
            watch = await self.store.get_watch(watch.id) or watch
        shown = watch.card_shows
        transitions = diff(watch.told_status, result.job)
        for transition in transitions:
            if wanted(transition, watch.only):
                await self._post_transition(watch, result, transition, counts)
            else:
                await self.store.change_watch(
                    watch.id, WatchChange(told_status=transition.to_status)
                )
        finished = result.job.is_finished
        status = result.job.job_status
        if transitions or shown != status:
            known = counts.peek()
            card = self.card(watch, result, ended=finished, counts=Counts(known) if known else None)
            if await self.poster.update(watch.channel_id, watch.card_ts or "", card):
                await self.store.change_watch(watch.id, WatchChange(card_status=status))
            elif finished:
                # Slack would not edit the card (rate limited): the watch stays until the
                # card shows the end, so a channel never keeps a card that says "running".
                return
        if finished:
            await self.store.end_watch(watch.id, "finished", self._clock())

    async def _check_alert(self, watch: Watch, result: JobResult, counts: PollCounts) -> None:
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
        await self.delivery.deliver(
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
        self, watch: Watch, result: JobResult, transition: Transition, counts: PollCounts
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
        await self.delivery.deliver(
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
            watching={"watch": watch, "interval": self.budget.interval(), "ended": ended},
        )

    async def post_card(self, watch: Watch, result: JobResult) -> None:
        shows = {"card_status": result.job.job_status}
        card = self.card(watch, result)
        await self.delivery.deliver(watch, "card", "card", card, thread_ts=None, watch_values=shows)

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
                await self.delivery.deliver(watch, "note", reason, message, thread_ts=watch.card_ts)
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
        await self.store.change_watch(watch.id, WatchChange(state=PAUSED, note=error))
        entry = await self.store.begin_post(watch.id, "dm", error, self._clock())
        if not entry.fresh:  # already told about this pause
            return
        message = self.renderer.render("watch_paused", watch=watch, error=error, demo=self.demo)
        if await self.poster.direct_message(watch.created_by, message):
            await self.store.finish_post(entry.id, "dm", self._clock(), watch_id=watch.id)
