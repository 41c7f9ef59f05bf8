"""Three app.py processes in HTTP mode on one PostgreSQL, against the emulator at
IOT_QPS=10, with Slack's requests spread round-robin over them as a load balancer would:
they behave as one app to Alibaba Cloud and to Slack. A watched batch outlives the
SIGKILL of the replica polling it, a re-upgrade confirmed on two of them runs once, and
their /metrics add up to what the emulator saw."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.db import Store
from bot.emulator import Call, fixtures
from bot.slack.triage import PageRef
from fakes import Inbound, as_http
from fakes.slack import ApiCall
from tests.helpers import (
    POSTGRES_URL,
    SIGNING_SECRET,
    TEST_KEY_ID,
    TEST_KEY_SECRET,
    app_env,
    free_port,
    fresh_postgres,
    need_postgres,
    start_app,
    stop,
    wait_until,
)

pytestmark = [pytest.mark.xdist_group("postgres"), pytest.mark.slow]
QPS = 10
CHANNEL = "C123"


def max_in_window(times: list[float], window: float = 1.0) -> int:
    ordered, best, start = sorted(times), 0, 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass(frozen=True)
class Replica:
    port: int
    process: asyncio.subprocess.Process
    key_id: str  # the AccessKey it signs with: the emulator's log says who called


@pytest.fixture
async def start_replicas(emulator, fake_slack, tmp_path, postgres_turn):
    """Start app.py processes on one emptied PostgreSQL: ``await start_replicas(2,
    poll_seconds="1", OTAJOB_ACTIONS="reupgrade")``; settings go into each one's
    environment. With ``own_keys`` each signs with an AccessKey of its own (the
    emulator's quota is per key, so only where the quota is not under test). All are
    stopped after the test."""
    need_postgres()
    emulator.qps = QPS
    url = await fresh_postgres(POSTGRES_URL)
    running: list[Replica] = []

    async def start(
        count: int = 3, *, poll_seconds: str = "60", own_keys: bool = False, **settings: str
    ) -> list[Replica]:
        started = []
        for _ in range(count):
            port = free_port()
            env = app_env(emulator, fake_slack, tmp_path, poll_seconds, port)
            env |= {"DATABASE_URL": url, "IOT_QPS": str(QPS), "LOG_LEVEL": "WARNING", **settings}
            key_id = TEST_KEY_ID
            if own_keys:
                key_id = f"{TEST_KEY_ID}{len(running)}"
                emulator.credentials[key_id] = TEST_KEY_SECRET
                env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = key_id
            replica = Replica(port, await start_app(env, port), key_id)
            running.append(replica)
            started.append(replica)
        return started

    try:
        yield start
    finally:
        for replica in running:
            await stop(replica.process)


@pytest.fixture
async def replicas(start_replicas) -> list[int]:
    """The ports of three replicas, polling watches every minute."""
    return [replica.port for replica in await start_replicas()]


async def send(fake_slack, ports: list[int], texts: list[str]) -> None:
    """Each command to the next replica in turn, all at once."""
    inbound = Inbound(fake_slack, SIGNING_SECRET)
    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(
            *(
                deliver(http, ports[i % len(ports)], inbound.command(text, key=f"r{i}"))
                for i, text in enumerate(texts)
            )
        )


async def deliver(http: httpx.AsyncClient, port: int, request) -> None:
    """One of Slack's requests, signed, to the replica on ``port``; it must be acked."""
    body, headers = as_http(request)
    url = f"http://127.0.0.1:{port}/slack/events"
    assert (await http.post(url, content=body, headers=headers)).status_code == 200


def dump(value) -> str:
    return json.dumps(getattr(value, "body", value), ensure_ascii=False)


async def test_sixty_distinct_queries_stay_within_the_quota(replicas, emulator, fake_slack):
    """60 distinct JobIds over three processes: all answered, no Throttling, at most 10
    calls in any second of the gateway's log (the device counts that follow included)."""
    ids = [f"ProcJob{i:018d}" for i in range(60)]
    for job_id in ids:
        emulator.add_job(fixtures.make_job(job_id))
    await send(fake_slack, replicas, ids)
    for i, job_id in enumerate(ids):
        (card, *_) = await fake_slack.wait_for_posts(f"r{i}", timeout=60)
        assert job_id in str(card.body)
    assert emulator.count("QueryOTAJob") == 60
    assert emulator.count("QueryOTAJob", code="Throttling.User") == 0
    assert emulator.count("ListOTATaskByJob", code="Throttling.User") == 0
    assert max_in_window([c.at for c in emulator.calls]) <= QPS


async def test_forty_identical_queries_cost_at_most_two_reads(replicas, emulator, fake_slack):
    """40 identical queries over three processes: at most two QueryOTAJob calls."""
    job = "ProcSameJob00000000000001"
    emulator.add_job(fixtures.make_job(job))
    emulator.latency = 0.2  # the first read is still under way when the others arrive
    await send(fake_slack, replicas, [job] * 40)
    for i in range(40):
        await fake_slack.wait_for_posts(f"r{i}", timeout=60)
    assert emulator.count("QueryOTAJob") <= 2


def job_reads_since(emulator, seen: int) -> list[Call]:
    return [c for c in emulator.calls[seen:] if c.action == "QueryOTAJob"]


def card_edits(fake_slack, card: dict) -> list[ApiCall]:
    return [
        c
        for c in fake_slack.calls_to("chat.update")
        if c.args.get("ts") == card["ts"] and c.error is None
    ]


def replies(fake_slack, card: dict) -> list[dict]:
    return fake_slack.thread(CHANNEL, card["ts"])[1:]


async def watch(fake_slack, port: int, job: str) -> dict:
    """``watch job`` in the channel, to the replica on ``port``: the card it posts."""
    await send(fake_slack, [port], [f"watch {job}"])
    (said, *_) = await fake_slack.wait_for_posts("r0", timeout=30)
    assert "Watching" in dump(said)
    (card,) = await fake_slack.wait_for_messages(CHANNEL, timeout=30)
    return card


async def complete(emulator, store: Store, job: str) -> None:
    """The batch finishes; return once its watch has ended, which it does only when its
    card and final reply show the end: nothing more posts for it."""
    emulator.set_tasks(job, {"SUCCEEDED": 980, "FAILED": 15, "CANCELED": 5})
    emulator.set_status(job, "COMPLETED")

    async def ended() -> bool:
        return not await store.live_watches()

    await wait_until(ended, timeout=60)


def assert_told_once(fake_slack, card: dict) -> None:
    """One reply and one card edit per transition: none twice, none lost."""
    texts = [reply["text"] for reply in replies(fake_slack, card)]
    assert len(texts) == 2, texts
    assert "Scheduled → In progress" in texts[0] and "In progress → Completed" in texts[1]
    assert "980 succeeded" in dump(replies(fake_slack, card)[1]["blocks"])
    assert len(card_edits(fake_slack, card)) == 2
    assert [m["ts"] for m in fake_slack.top_level(CHANNEL)] == [card["ts"]]


async def test_a_watched_batch_outlives_the_replica_polling_it(
    start_replicas, emulator, fake_slack
):
    """A replica caught mid-poll of a watched batch is SIGKILLed, holding the poll's
    claim; the batch then finishes. Another replica polls it once the claim's lease
    runs out, and the channel gets one reply and one card edit per transition: none
    twice, none lost."""
    job = "ProcWatchJob0000000000001"
    emulator.add_job(fixtures.make_job(job, JobStatus="PLANNED", UtcStartTime=None))
    replicas = await start_replicas(poll_seconds="1", own_keys=True)
    store = await Store.open(POSTGRES_URL)
    try:
        card = await watch(fake_slack, replicas[0].port, job)
        emulator.set_status(job, "IN_PROGRESS")
        await wait_until(
            lambda: bool(replies(fake_slack, card) and card_edits(fake_slack, card)), timeout=30
        )

        # From now on the emulator holds its answers: the next poll is caught in flight,
        # its claim taken, and the AccessKey it signed with names the replica sending it.
        seen, emulator.latency = len(emulator.calls), 60
        await wait_until(lambda: bool(job_reads_since(emulator, seen)), timeout=30)
        caught = job_reads_since(emulator, seen)[0]
        poller = next(r for r in replicas if r.key_id == caught.access_key_id)
        poller.process.kill()
        assert await poller.process.wait() == -9
        emulator.latency = 0
        # The claim row (bot/db/polls.py) names no owner: the dead replica's claim is its
        # next_poll_at pushed out by the lease, which nobody else may take before then.
        claimed_until = (await store.get_poll(job, None)).next_poll_at
        assert claimed_until > caught.at

        seen = len(emulator.calls)
        await complete(emulator, store, job)
    finally:
        await store.close()
    assert_told_once(fake_slack, card)
    after = job_reads_since(emulator, seen)
    assert after and poller.key_id not in {c.access_key_id for c in after}
    assert after[0].at >= claimed_until  # no one read the batch while the claim stood


async def test_a_poll_slower_than_its_lease_is_not_taken_over(start_replicas, emulator, fake_slack):
    """Polling every second, a claim's lease is 5 s. Slack answers the transition's reply
    429 with Retry-After 7 s, so the poll posting it waits longer than the lease: it keeps
    renewing its claim meanwhile, and no other replica takes the poll over and posts the
    same transition again. One reply and one card edit per transition."""
    job = "ProcSlowPoll0000000000001"
    emulator.add_job(fixtures.make_job(job, JobStatus="PLANNED", UtcStartTime=None))
    replicas = await start_replicas(poll_seconds="1")
    store = await Store.open(POSTGRES_URL)
    retry_after = 7
    try:
        card = await watch(fake_slack, replicas[0].port, job)
        fake_slack.fail_next("chat.postMessage", "ratelimited", status=429, retry_after=retry_after)
        emulator.set_status(job, "IN_PROGRESS")

        def posts() -> list[ApiCall]:
            return fake_slack.calls_to("chat.postMessage")

        await wait_until(lambda: any(c.error == "ratelimited" for c in posts()), timeout=30)
        refused = next(c for c in posts() if c.error == "ratelimited")
        assert refused.args.get("thread_ts") == card["ts"]

        # The refused post is sent again no sooner than Retry-After says (slack_sdk waits
        # that many seconds and up to one more): once it has landed, the slow poll is over.
        def retried() -> bool:
            return any(
                c.error is None
                and c.args.get("thread_ts") == card["ts"]
                and c.at >= refused.at + retry_after
                for c in posts()
            )

        await wait_until(lambda: retried() and bool(card_edits(fake_slack, card)), timeout=30)
        await complete(emulator, store, job)
    finally:
        await store.close()
    assert_told_once(fake_slack, card)


async def test_reupgrade_confirmed_on_two_processes_at_once_runs_once(
    start_replicas, emulator, fake_slack
):
    """Two admins confirm Re-upgrade on two processes at the same moment: one run (one
    ReupgradeOTATask for the 8 failed devices), one record in the channel and in the
    action log; the other admin is told it is already under way."""
    job = "ProcReupgrade000000000001"
    emulator.add_job(fixtures.make_job(job))
    emulator.set_tasks(job, {"FAILED": 8, "SUCCEEDED": 5})
    fake_slack.directory.add_user("U0ADMIN02", "bea")
    one, other = await start_replicas(2, OTAJOB_ACTIONS="reupgrade", OTAJOB_ADMINS="U123,U0ADMIN02")
    # The run's record waits at Slack, so the run holds its lease until both clicks
    # are answered, however the two processes are scheduled (the requests themselves
    # are awaited last: when each process acknowledges is not what is tested here).
    records = fake_slack.hold("chat.postMessage")
    value = PageRef(job, None, 1).to_value()
    inbound = Inbound(fake_slack, SIGNING_SECRET)
    async with httpx.AsyncClient(timeout=60) as http:
        clicks = asyncio.gather(
            deliver(http, one.port, inbound.click("job_reupgrade", value, key="b1")),
            deliver(
                http,
                other.port,
                inbound.click("job_reupgrade", value, key="b2", user_id="U0ADMIN02"),
            ),
        )
        (first,) = await fake_slack.wait_for_posts("b1", timeout=30)
        (second,) = await fake_slack.wait_for_posts("b2", timeout=30)
        records.set()
        await clicks
    said = [dump(first), dump(second)]
    assert sum("Re-upgrading the failed devices" in text for text in said) == 1
    assert sum("is already running" in text for text in said) == 1
    (record,) = await fake_slack.wait_for_messages(CHANNEL, timeout=30)
    assert record["metadata"]["event_payload"].keys() == {"action"}
    store = await Store.open(POSTGRES_URL)
    try:
        (logged,) = await store.actions_for(job)
    finally:
        await store.close()
    assert logged["outcome"] == "done"
    assert emulator.count("ReupgradeOTATask") == 1
    assert len(fake_slack.top_level(CHANNEL)) == 1


async def test_metrics_of_the_processes_add_up_to_what_happened(
    start_replicas, emulator, fake_slack
):
    """After commands spread over three processes, the QueryOTAJob calls their /metrics
    count add up to the calls the emulator answered, and their acknowledgements to the
    commands sent."""
    ids = [f"ProcMetrics{i:014d}" for i in range(6)]
    for job_id in ids:
        emulator.add_job(fixtures.make_job(job_id))
    # Distinct batches, one asked for again and again (mostly answered without a call:
    # cached, or shared between the processes) and one that does not exist (a refused
    # call counts too). Each card is sent once its batch is read: no read is left after.
    texts = ids + [ids[0]] * 5 + ["ProcMetricsMissing0000001"]
    ports = [replica.port for replica in await start_replicas()]
    await send(fake_slack, ports, texts)
    for i in range(len(texts)):
        await fake_slack.wait_for_posts(f"r{i}", timeout=60)
    calls = acks = 0.0
    async with httpx.AsyncClient(timeout=30) as http:
        for port in ports:
            scraped = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            for family in text_string_to_metric_families(scraped):
                for sample in family.samples:
                    if (
                        sample.name == "otajob_iot_calls_total"
                        and sample.labels["action"] == "QueryOTAJob"
                    ):
                        calls += sample.value
                    elif sample.name == "otajob_ack_seconds_count":
                        assert sample.labels["kind"] == "command"
                        acks += sample.value
    assert emulator.count("QueryOTAJob", code="iot.ota.JobNotFound") >= 1
    assert calls == emulator.count("QueryOTAJob")
    assert acks == len(texts)
