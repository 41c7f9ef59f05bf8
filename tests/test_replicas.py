"""Replicas on one PostgreSQL share the account's quota: together never over IOT_QPS in
any one-second window, people still ahead of background work, and the places of a replica
that died come back by themselves. (SQLite serves one process: test_one_process.py.)"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text

from bot.db import Store
from bot.db.schema import quota_slots
from bot.db.shared_quota import NOW, SharedWindowLimiter
from bot.emulator import fixtures
from bot.iot.models import JobResult
from bot.iot.quota import Priority
from bot.slack.triage import PageRef
from tests.helpers import POSTGRES_URL, fresh_postgres, need_postgres, start_runtime
from tests.surfaces import click, dump, handled

pytestmark = pytest.mark.xdist_group("postgres")  # the PostgreSQL tests share one database
QPS = 10


@pytest.fixture
async def database(postgres_turn):
    need_postgres()
    store = await Store.open(await fresh_postgres(POSTGRES_URL))
    yield store
    await store.close()


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Most events in any window (t - window, t], as the gateway counts."""
    ordered, best, start = sorted(times), 0, 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.slow
async def test_three_replicas_never_pass_the_quota_together(emulator, fake_slack, database):
    """60 distinct jobs asked round-robin of three replicas at IOT_QPS=10: all answered,
    no Throttling at the gateway, at most 10 calls in any second of its log."""
    emulator.qps = QPS
    ids = [f"ReplicaJob{i:015d}" for i in range(60)]
    for job_id in ids:
        emulator.add_job(fixtures.make_job(job_id))
    url = str(database.engine.url.render_as_string(hide_password=False))
    replicas = [
        await start_runtime(emulator, fake_slack, DATABASE_URL=url, IOT_QPS=str(QPS))
        for _ in range(3)
    ]
    try:
        assert all(isinstance(r.iot.limiter, SharedWindowLimiter) for r in replicas)
        results = await asyncio.gather(
            *(replicas[i % 3].deps.service.get_job(job_id) for i, job_id in enumerate(ids))
        )
    finally:
        for replica in replicas:
            await replica.aclose()
    assert [r.job.job_id for r in results if isinstance(r, JobResult)] == ids
    calls = [c for c in emulator.calls if c.action == "QueryOTAJob"]
    assert emulator.count("QueryOTAJob", code="Throttling.User") == 0
    assert max_in_window([c.at for c in calls]) <= QPS


async def test_people_go_ahead_of_background_work_across_replicas(database):
    """With the watchers' share (5 of 10) taken by one replica, another replica's background
    work must wait while its people's calls still go."""
    one = SharedWindowLimiter(database.engine, QPS, background_limit=5)
    other = SharedWindowLimiter(database.engine, QPS, background_limit=5)
    for _ in range(5):
        taken, _ = await one.try_take(Priority.BACKGROUND)
        assert taken is not None
    refused, soonest = await other.try_take(Priority.BACKGROUND)
    assert refused is None and 0 < soonest <= one.arrival_bound + one.span
    person, _ = await other.try_take(Priority.PERSON)
    assert person is not None
    for _ in range(4):  # the window's other places: people's, from either replica
        assert (await one.try_take(Priority.PERSON))[0] is not None
    assert (await other.try_take(Priority.PERSON))[0] is None  # 10 in the window: full


async def test_a_dead_replicas_places_come_back_by_themselves(database):
    """A replica that took the whole window and died (never answered, never released)
    holds it at most arrival_bound + a window, on the database's clock: then another
    replica's call goes."""
    dead = SharedWindowLimiter(database.engine, QPS)
    for _ in range(QPS):
        assert (await dead.try_take(Priority.PERSON))[0] is not None
    async with database.engine.connect() as conn:
        left = await conn.execute(select(func.max(quota_slots.c.expires_at) - text(NOW)))
        longest = left.scalar()
    assert longest <= dead.arrival_bound + dead.span  # on the database's clock
    alive = SharedWindowLimiter(database.engine, QPS)
    assert (await alive.try_take(Priority.PERSON))[0] is None
    # Nobody releases the dead replica's places: they expire, and the call goes.
    await asyncio.wait_for(take_and_answer(alive), timeout=10)
    async with database.engine.connect() as conn:
        held = (await conn.execute(select(func.count()).select_from(quota_slots))).scalar()
    assert held >= 1  # the answered call still counts for one window


async def take_and_answer(limiter: SharedWindowLimiter) -> None:
    async with limiter.slot(Priority.PERSON):
        pass


@pytest.mark.slow
async def test_reupgrade_confirmed_on_two_replicas_at_once_runs_once(
    emulator, fake_slack, database
):
    """Two admins click Re-upgrade on two replicas at the same moment: one run, one
    record; the other is told it is already under way."""
    job = "ReplicaReupgrade000000001"
    emulator.add_job(fixtures.make_job(job))
    emulator.set_tasks(job, {"FAILED": 25, "SUCCEEDED": 5})
    fake_slack.directory.add_user("U0ADMIN02", "bea")
    url = str(database.engine.url.render_as_string(hide_password=False))
    admins = {"OTAJOB_ACTIONS": "reupgrade", "OTAJOB_ADMINS": "U123,U0ADMIN02"}
    one = await start_runtime(emulator, fake_slack, DATABASE_URL=url, **admins)
    other = await start_runtime(emulator, fake_slack, DATABASE_URL=url, **admins)
    try:
        value = PageRef(job, None, 1).to_value()
        await asyncio.gather(
            click(one, fake_slack, "job_reupgrade", value, key="b1"),
            click(other, fake_slack, "job_reupgrade", value, key="b2", user_id="U0ADMIN02"),
        )
        await handled()
        said = " ".join(dump(p) for p in fake_slack.posts_to("b1") + fake_slack.posts_to("b2"))
        assert "is already running" in said
        calls = [c for c in emulator.calls if c.action == "ReupgradeOTATask"]
        assert len(calls) == 3  # 25 devices, ten a call: once
        assert len(await one.store.actions_for(job)) == 1
    finally:
        await other.aclose()
        await one.aclose()


async def test_identical_reads_on_three_replicas_cost_one_call(emulator, fake_slack, database):
    """40 identical job reads spread over three replicas at once: one QueryOTAJob (two at
    most), the others served by the replica that read it; all get the same answer."""
    job = "ReplicaSameJob00000000001"
    emulator.add_job(fixtures.make_job(job))
    emulator.latency = 0.2  # the first read is still under way when the others ask
    url = str(database.engine.url.render_as_string(hide_password=False))
    replicas = [await start_runtime(emulator, fake_slack, DATABASE_URL=url) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(replicas[i % 3].deps.service.get_job(job) for i in range(40))
        )
        ways = [r.metrics.job_reads.labels("shared")._value.get() for r in replicas]
    finally:
        for replica in replicas:
            await replica.aclose()
    assert emulator.count("QueryOTAJob") <= 2
    assert len({r.request_id for r in results}) <= 2  # the answers of those calls only
    assert {r.job.job_id for r in results} == {job}
    assert sum(ways) >= 1  # at least one replica took another's answer


async def test_a_failure_listing_read_on_one_replica_serves_the_next_click_on_another(
    emulator, fake_slack, database
):
    """The listing, its next page and its CSV come from one read of the failed devices,
    whichever replica the next click lands on (Refresh reads again)."""
    job = "ReplicaFailures0000000001"
    emulator.add_job(fixtures.make_job(job))
    emulator.set_tasks(job, {"FAILED": 250, "SUCCEEDED": 5}, failure_reasons=["低電圧", "timeout"])
    url = str(database.engine.url.render_as_string(hide_password=False))
    one = await start_runtime(emulator, fake_slack, DATABASE_URL=url)
    other = await start_runtime(emulator, fake_slack, DATABASE_URL=url)
    try:
        first = await one.deps.service.failures(job)
        pages = emulator.count("ListOTATaskByJob")
        assert pages >= 3 and len(first.tasks) == 250
        elsewhere = await other.deps.service.failures(job)
        assert emulator.count("ListOTATaskByJob") == pages  # not read again
        assert elsewhere.tasks == first.tasks and elsewhere.reasons() == first.reasons()
        assert elsewhere.request_ids == first.request_ids
        await other.deps.service.failures(job, fresh=True)  # Refresh: a new read
        assert emulator.count("ListOTATaskByJob") > pages
    finally:
        await other.aclose()
        await one.aclose()
