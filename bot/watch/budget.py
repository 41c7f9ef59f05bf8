"""The poll budget: when each watched job is polled next, within the watchers' share."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from ..db import Store
from ..iot.models import TASK_STATUSES, JobResult, OtaJob
from .transitions import PLANNED


# The watchers' settings (bot.watch.watcher exports them): most of them pace the polls.
@dataclass(frozen=True)
class WatchSettings:
    poll_seconds: float = 60.0
    # While Alibaba Cloud's pushed messages arrive, polls are only the safety net.
    safety_poll_seconds: float = 900.0
    max_days: float = 14.0
    budget_per_second: float = 5.0  # the watchers' share of the quota, in calls per second
    planned_recheck_seconds: float = 900.0  # a scheduled batch is also checked this often
    max_backoff_seconds: float = 900.0
    shutdown_seconds: float = 10.0


class Budget:
    """How many jobs share the budget, and the poll times that gives each of them."""

    def __init__(
        self,
        store: Store,
        settings: WatchSettings,
        *,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._rng = rng
        self.polled_jobs = 0
        self.alerted_jobs = 0
        self.live: Callable[[], bool] = lambda: False  # the push subscription is connected

    async def count_jobs(self) -> None:
        self.polled_jobs, self.alerted_jobs = await self.store.budget_counts()

    def interval(self) -> float:
        """The real time between two polls of a job, given how many jobs share the budget.
        A job with an alert costs eight calls a poll (its device counts too). A poll holds
        its quota place a little over a second, and final summaries cost seven more
        calls: plan on 80 % of the share.

        While pushed messages arrive, polling is the safety net: every interval is
        stretched by WATCH_SAFETY_POLL_SECONDS / WATCH_POLL_SECONDS (15 by default), so
        idle watchers spend a fifteenth of what polling alone would, however many jobs
        are watched (at 1,000 jobs a lost message is caught within about an hour)."""
        polling = self.polling_interval()
        if self.live():
            return polling * max(self.settings.safety_poll_seconds / self.settings.poll_seconds, 1)
        return polling

    def polling_interval(self) -> float:
        """The interval without push: WATCH_POLL_SECONDS, stretched to fit the share."""
        calls = self.polled_jobs + len(TASK_STATUSES) * self.alerted_jobs
        spread = calls / (self.settings.budget_per_second * 0.8)
        return max(self.settings.poll_seconds, spread)

    def lease(self) -> float:
        """How long a claimed poll stays claimed. A poll records its real next time when
        it ends; only if the process died mid-poll does the lease run out, and then the
        job is polled again (by this process after a restart, or by another one)."""
        return min(max(2 * self.settings.poll_seconds, 5.0), 120.0)

    def backoff(self, errors: int) -> float:
        """Exponential, with jitter, never below the normal interval's cap. From the
        polling interval even while push is live: a poll that failed may be the one a
        pushed message asked for."""
        interval = self.polling_interval()
        cap = max(self.settings.max_backoff_seconds, interval)
        return min(interval * 2 ** max(errors - 1, 0), cap) * self._rng.uniform(0.9, 1.1)

    def next_poll(self, job: OtaJob, now: float) -> float:
        interval = self.interval()
        if job.is_finished:
            # Its watches end at this poll unless Slack refused an edit for now (the card,
            # a summary): try again soon, not at the safety net's pace.
            interval = min(interval, self.settings.poll_seconds)
        if job.job_status == PLANNED and job.utc_schedule_time is not None:
            start = job.utc_schedule_time.timestamp()
            if start > now:  # check just after the scheduled start, and now and then before
                return min(start + 5, now + max(interval, self.settings.planned_recheck_seconds))
        return now + interval * self._rng.uniform(0.9, 1.1)

    async def record(self, job_id: str, instance_id: str | None, result: JobResult) -> None:
        """Remember what was read; the next poll is timed from now, after the answer."""
        now = self._clock()
        job = result.job
        await self.store.record_poll(
            job_id,
            instance_id,
            next_poll_at=self.next_poll(job, now),
            now=now,
            status=job.job_status,
            job_json=json.dumps(result.raw, ensure_ascii=False),
        )

    async def record_error(self, job_id: str, instance_id: str | None, errors: int) -> None:
        """Count the failure and push the next poll back, exponentially."""
        now = self._clock()
        await self.store.record_poll(
            job_id, instance_id, next_poll_at=now + self.backoff(errors + 1), now=now, error=True
        )
