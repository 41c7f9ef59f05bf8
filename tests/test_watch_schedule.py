"""When the watcher polls: intervals, scheduled batches, backoff. Pure timing, no I/O."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from bot.iot.models import OtaJob
from bot.watch.watcher import Watcher, WatchSettings

NOW = 1_800_000_000.0


def watcher(polled_jobs: int = 0, **settings) -> Watcher:
    w = Watcher(
        None, None, None, None, WatchSettings(**settings), clock=lambda: NOW, rng=random.Random(1)
    )  # type: ignore[arg-type]
    w._polled_jobs = polled_jobs
    return w


def test_interval_stretches_evenly_when_the_share_is_short() -> None:
    """Up to what the share can poll, the interval is WATCH_POLL_SECONDS; beyond, it grows
    with the number of jobs (with 20 % headroom)."""
    assert watcher(100, poll_seconds=60, budget_per_second=5).interval() == 60
    assert watcher(1000, poll_seconds=60, budget_per_second=5).interval() == 250


def test_in_progress_polls_are_jittered_around_the_interval() -> None:
    """Polls spread out: ±10 % around the interval."""
    w = watcher(1, poll_seconds=60)
    times = {w._next_poll(OtaJob(job_status="IN_PROGRESS"), NOW) - NOW for _ in range(50)}
    assert len(times) > 40 and all(54 <= t <= 66 for t in times)


def test_scheduled_batches_are_checked_just_after_their_start() -> None:
    """A PLANNED batch is checked 5 s after its scheduled start, or every 15 min before."""
    w = watcher(1, poll_seconds=60)
    soon = datetime.fromtimestamp(NOW + 300, UTC)
    later = datetime.fromtimestamp(NOW + 7200, UTC)
    past = datetime.fromtimestamp(NOW - 60, UTC)
    assert w._next_poll(OtaJob(job_status="PLANNED", utc_schedule_time=soon), NOW) == NOW + 305
    assert w._next_poll(OtaJob(job_status="PLANNED", utc_schedule_time=later), NOW) == NOW + 900
    overdue = w._next_poll(OtaJob(job_status="PLANNED", utc_schedule_time=past), NOW) - NOW
    assert 54 <= overdue <= 66  # late to start: polled like a running batch


@pytest.mark.parametrize(("errors", "low", "high"), [(1, 54, 66), (2, 108, 132), (5, 810, 990)])
def test_backoff_doubles_up_to_a_cap(errors, low, high) -> None:
    """Failed polls back off exponentially with jitter, capped at 15 minutes."""
    assert low <= watcher(1, poll_seconds=60)._backoff(errors) <= high
    assert watcher(1, poll_seconds=60)._backoff(20) <= 990
