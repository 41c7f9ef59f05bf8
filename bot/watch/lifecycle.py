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
from ..iot.models import FINISHED_STATUSES, JobResult, OtaJob, TaskCounts
from ..iot.quota import Priority
from ..iot.service import OtaService
from ..job_ref import JobRef
from ..languages import spoken
from ..render import Message, Renderer, job_card
from .alerts import AlertRule, step
from .budget import Budget, WatchSettings
from .counts import PollCounts
from .delivery import Delivery
from .poster import ChannelUnavailable, SlackPoster
from .transitions import Transition, diff, from_key, wanted

log = logging.getLogger("otajob.watch")
# How long a final reply waits for its device summary before it goes out without it (the
# summary is then edited in): long enough for seven calls on a quiet quota.
SUMMARY_WAIT_SECONDS = 1.5
SUMMARY_TRIES, SUMMARY_RETRY_SECONDS = 3, 20.0  # Slack refusing the summary's edit
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
        language: str,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.language = language  # the workspace's; a channel may choose its own
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
        # Final replies' summaries being read and edited in, outside the polls, by
        # (watch ID, transition key): a later poll leaves these to their task.
        self._summaries: dict[tuple[int, str], asyncio.Task[None]] = {}

    async def channel_language(self, channel_id: str) -> str:
        """The language posts in ``channel_id`` are written in (read at each post, so
        `/otajob language` applies from the next one, on every replica)."""
        return spoken(await self.store.channel_language(channel_id), self.language)

    async def aclose(self) -> None:
        """Stop filling in summaries (a later poll, or the next start, finishes them)."""
        for task in list(self._summaries.values()):
            task.cancel()
        await asyncio.gather(*self._summaries.values(), return_exceptions=True)

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
        user_language: str | None = None,
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
                created_by_language=user_language,
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
        tried: set[str] = set()  # summaries tried this poll: not again until the next
        for transition in transitions:
            if wanted(transition, watch.only):
                await self._post_transition(watch, result, transition, counts)
                tried.add(transition.key)
            else:
                await self.store.change_watch(
                    watch.id, WatchChange(told_status=transition.to_status)
                )
        finished = result.job.is_finished
        status = result.job.job_status
        if transitions or shown != status:
            known = counts.peek()
            lang = await self.channel_language(watch.channel_id)
            shown_counts = Counts(known) if known else None
            card = self.card(watch, result, lang=lang, ended=finished, counts=shown_counts)
            if await self.poster.update(watch.channel_id, watch.card_ts or "", card):
                await self.store.change_watch(watch.id, WatchChange(card_status=status))
            elif finished:
                # Slack would not edit the card (rate limited): the watch stays until the
                # card shows the end, so a channel never keeps a card that says "running".
                return
        if finished:
            if not await self._summaries_filled(watch, result, counts, tried):
                return  # likewise for a final reply still "counting devices"
            await self.store.end_watch(watch.id, "finished", self._clock())

    async def _check_alert(self, watch: Watch, result: JobResult, counts: PollCounts) -> None:
        """Post an alert when the failure count crosses the watch's threshold; remember
        that it did, so it posts again only after a recovery."""
        rule = AlertRule.parse(watch.alert_rule or "")
        if rule is None:
            return
        try:
            task_counts = await counts(Priority.BACKGROUND)
        except IotError as exc:  # no counts this time: judge at the next poll
            log.warning("counts for the alert on watch %d: %s", watch.id, exc)
            return
        current = await self.store.get_watch(watch.id) or watch
        decision = step(rule, task_counts, current.alerting)
        if not (decision.fire or decision.recovered):
            return
        # A recovery is a quiet note in the thread: no mention, no broadcast.
        number = current.alerts_sent + (1 if decision.fire else 0)
        lang = await self.channel_language(current.channel_id)
        message = self.renderer.render(
            "alert",
            lang=lang,
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
            card = self.card(current, result, lang=lang, counts=Counts(task_counts))
            await self.poster.update(current.channel_id, current.card_ts, card)

    async def _post_transition(
        self, watch: Watch, result: JobResult, transition: Transition, counts: PollCounts
    ) -> None:
        """The reply goes out at once. A final one carries its device summary when the
        seven calls come back within SUMMARY_WAIT_SECONDS; otherwise (the quota is busy:
        summaries wait behind every poll) the summary is read and edited in by a task of
        its own, so neither this completion nor the polls after it wait for it."""
        known = counts.peek() if transition.final else None  # the alert may have read them
        if transition.final and known is None:
            known = await self._counts_soon(counts)
        summary_due = transition.final and known is None
        if summary_due:  # recorded first: a crash before the edit leaves it to redo
            await self.store.begin_post(watch.id, "summary", transition.key, self._clock())
        lang = await self.channel_language(watch.channel_id)
        ts = await self.delivery.deliver(
            watch,
            "transition",
            transition.key,
            self._transition(watch, result, transition, known, lang=lang, loading=summary_due),
            thread_ts=watch.card_ts,
            broadcast=transition.final and not watch.quiet,
            told_status=transition.to_status,
        )
        if summary_due:
            key = (watch.id, transition.key)
            task = asyncio.create_task(self._summary_later(watch, result, transition, ts, counts))
            self._summaries[key] = task
            task.add_done_callback(lambda _: self._summaries.pop(key, None))

    async def _summary_later(
        self, watch: Watch, result: JobResult, transition: Transition, ts: str, counts: PollCounts
    ) -> None:
        """Read the summary, edit it in, and end the watch if that was all it waited for.
        Slack saying "later" (chat.update is Tier 3: 50 a minute) is retried a few times
        here, then left to the watch's next poll (a finished batch's comes within
        WATCH_POLL_SECONDS: Budget.next_poll)."""
        try:
            for attempt in range(SUMMARY_TRIES):
                if attempt:
                    await asyncio.sleep(SUMMARY_RETRY_SECONDS * attempt)
                summary = await self._read_summary(counts)
                async with self.lock(watch.job_id, watch.instance_id):
                    if await self._fill_summary(watch, result, transition, ts, summary):
                        await self._end_if_told(watch.id)
                        return
        except (ChannelUnavailable, SlackApiError) as exc:
            log.warning("summary for watch %d not edited in: %s", watch.id, exc)
        except Exception:  # a later poll tries again; say why this one gave up
            log.exception("filling in the summary for watch %d failed", watch.id)

    async def _end_if_told(self, watch_id: int) -> None:
        """End a finished watch once its card and every final reply say so."""
        current = await self.store.get_watch(watch_id)
        if current is None or current.state != ACTIVE:
            return
        if current.card_shows not in FINISHED_STATUSES:
            return
        if await self.store.pending_posts(watch_id, "summary"):
            return
        await self.store.end_watch(watch_id, "finished", self._clock())

    async def _read_summary(self, counts: PollCounts) -> tuple[TaskCounts | None, IotError | None]:
        try:
            return await counts(), None
        except IotError as exc:  # the summary says so rather than keep "counting"
            return None, exc

    async def _counts_soon(self, counts: PollCounts) -> TaskCounts | None:
        """The device counts if they come within SUMMARY_WAIT_SECONDS (the usual case:
        the reply then carries them, and costs no edit, chat.update being Tier 3); None
        at once when calls already wait for the quota (several batches finishing
        together), or after that wait: the reply then goes out without them."""
        if counts.slow or self.service.client.quota_busy():
            return None  # waiting would only delay the reply: the summary comes by edit
        reading = asyncio.ensure_future(counts())
        reading.add_done_callback(_retrieve)  # its error, if any, is the summary's to show
        try:
            return await asyncio.wait_for(asyncio.shield(reading), SUMMARY_WAIT_SECONDS)
        except (TimeoutError, IotError):
            counts.slow = True
            return None

    async def _fill_summary(
        self,
        watch: Watch,
        result: JobResult,
        transition: Transition,
        ts: str,
        summary: tuple[TaskCounts | None, IotError | None],
    ) -> bool:
        """Edit the device summary into a final reply; False if Slack said "later"."""
        entry = await self.store.begin_post(watch.id, "summary", transition.key, self._clock())
        if entry.state == "posted":
            return True
        task_counts, counts_error = summary
        lang = await self.channel_language(watch.channel_id)
        filled = self._transition(
            watch, result, transition, task_counts, lang=lang, error=counts_error
        )
        if not await self.poster.update(watch.channel_id, ts, filled):
            return False
        await self.store.finish_post(entry.id, ts, self._clock(), watch_id=watch.id)
        return True

    async def _summaries_filled(
        self, watch: Watch, result: JobResult, counts: PollCounts, tried: set[str]
    ) -> bool:
        """Every final reply of the watch has its summary (retrying those Slack would
        not edit at an earlier poll, or that a crash interrupted)."""
        done = True
        for key in await self.store.pending_posts(watch.id, "summary"):
            if key in tried or (watch.id, key) in self._summaries:
                done = False  # being filled in by this poll's task, or an earlier one's
                continue
            reply_ts = await self.store.posted_ts(watch.id, "transition", key)
            if not reply_ts:
                continue  # the reply itself was never posted: nothing to fill in
            transition = from_key(key, result.job)
            summary = await self._read_summary(counts)
            done = await self._fill_summary(watch, result, transition, reply_ts, summary) and done
        return done

    def _transition(
        self,
        watch: Watch,
        result: JobResult,
        transition: Transition,
        counts: TaskCounts | None,
        *,
        lang: str,
        loading: bool = False,
        error: IotError | None = None,
    ) -> Message:
        return self.renderer.render(
            "transition",
            lang=lang,
            job=result.job,
            job_id=watch.job_id,
            t=transition,
            counts=counts,
            counts_error=error,
            counts_loading=loading,
            demo=self.demo,
        )

    def card(
        self,
        watch: Watch,
        result: JobResult,
        *,
        lang: str,
        ended: bool = False,
        counts: Counts | None = None,
    ) -> Message:
        """The watched card in ``lang``: the job card plus how it is watched (or that it no
        longer is). ``counts`` None leaves device results off."""
        return job_card(
            self.renderer,
            result,
            lang=lang,
            ref=JobRef(watch.job_id, watch.instance_id, watch_id=watch.id),
            instance_id=watch.instance_id,
            demo=self.demo,
            buttons=("refresh",),
            counts=counts,
            watching={
                "watch": watch,
                "interval": self.budget.interval(),
                "live": self.budget.live(),
                "ended": ended,
            },
        )

    async def post_card(self, watch: Watch, result: JobResult) -> None:
        shows = {"card_status": result.job.job_status}
        card = self.card(watch, result, lang=await self.channel_language(watch.channel_id))
        await self.delivery.deliver(watch, "card", "card", card, thread_ts=None, watch_values=shows)

    async def _end(
        self, watch: Watch, reason: str, *, result: JobResult | None = None, **context: object
    ) -> None:
        """End a watch, saying why in its thread (when it has one), and mark its card."""
        lang = await self.channel_language(watch.channel_id)
        if watch.card_ts and reason != "finished":
            message = self.renderer.render(
                "watch_note",
                lang=lang,
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
                    card = self.card(watch, result, lang=lang, ended=True)
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
        # A DM only its creator reads: in their language (known when they set it up).
        lang = watch.created_by_language or self.language
        message = self.renderer.render(
            "watch_paused", lang=lang, watch=watch, error=error, demo=self.demo
        )
        if await self.poster.direct_message(watch.created_by, message):
            await self.store.finish_post(entry.id, "dm", self._clock(), watch_id=watch.id)


def _retrieve(future: asyncio.Future) -> None:
    """Mark a background read's error as seen (whoever awaits it handles it)."""
    if not future.cancelled():
        future.exception()
