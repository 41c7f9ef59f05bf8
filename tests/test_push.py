"""Live updates end to end: the emulator's STOMP server pushes, the app's stomp.py client
receives, the watcher polls the batch once and posts. Real client, real server, real
loop; polling alone is set to a minute, so anything posted within the test came by push.

Nothing here sleeps to prove that nothing happened: a test waits until the client has
taken the message in (its counters) and the poll it caused (if any) has finished."""

from __future__ import annotations

import json
import logging

import pytest

from bot.emulator import fixtures
from bot.iot.credentials import Credential, StaticCredentials
from tests.helpers import TEST_KEY_ID, TEST_KEY_SECRET, wait_until
from tests.surfaces import command

JOB = "PushJob000000000000000001"
CHANNEL = "C123"
WAIT = 15.0

pytestmark = pytest.mark.slow


@pytest.fixture
async def live(emulator, started, fake_slack):
    """A running app (watcher loop and subscription) watching JOB in CHANNEL, push live."""
    emulator.add_job(fixtures.make_job(JOB, JobStatus="PLANNED", UtcStartTime=None))
    url = await emulator.start_push()
    runtime = await started(IOT_PUSH_URL=url, WATCH_POLL_SECONDS="60")
    runtime.push.heartbeats_ms = (2_000, 1_000)  # a dead link shows in 1.5 s, not 15
    runtime.start()
    await wait_until(lambda: runtime.push.state == "live", WAIT)
    await command(runtime, fake_slack, f"watch {JOB}")
    await fake_slack.wait_for_messages(CHANNEL, 1, WAIT)
    await settled(runtime)
    return runtime


async def settled(runtime) -> None:
    """Every poll under way has finished and none is due: the watcher is idle."""
    scheduler = runtime.deps.watcher._scheduler
    store = runtime.store

    async def idle() -> bool:
        due = await store.next_due()
        return not scheduler._inflight and (
            due is None or due > runtime.deps.watcher._budget._clock() + 5
        )

    await wait_until(idle, WAIT)


def replies(fake_slack) -> list[dict]:
    (card,) = fake_slack.top_level(CHANNEL)
    return fake_slack.thread(CHANNEL, card["ts"])[1:]


async def test_a_pushed_transition_is_posted_once(live, fake_slack, emulator):
    watcher = live.deps.watcher
    emulator.set_status(JOB, "IN_PROGRESS")
    await wait_until(lambda: len(replies(fake_slack)) == 1, WAIT)
    assert "Scheduled → In progress" in replies(fake_slack)[0]["text"]
    await settled(live)
    assert len(replies(fake_slack)) == 1 and watcher.live.events == 1
    # Polling is the safety net while push is live: the next poll is far away.
    assert watcher.interval() >= 900


async def test_the_same_message_twice_posts_once(live, fake_slack, emulator):
    emulator.push.fault("duplicate")
    emulator.set_status(JOB, "IN_PROGRESS")
    await emulator.push.wait_for_sent(2, WAIT)
    await wait_until(lambda: live.push.received >= 2, WAIT)
    await settled(live)
    assert len(replies(fake_slack)) == 1
    assert live.deps.watcher.live.events == 1  # the copy was dropped by its messageId


async def test_a_malformed_message_posts_nothing(live, fake_slack, emulator, caplog):
    caplog.set_level(logging.WARNING, logger="otajob.push")
    polled = emulator.count("QueryOTAJob")
    emulator.push.fault("corrupt")
    emulator.set_status(JOB, "IN_PROGRESS")
    await wait_until(lambda: live.push.dropped == 1, WAIT)
    await settled(live)
    assert replies(fake_slack) == [] and emulator.count("QueryOTAJob") == polled
    assert any("dropped a pushed message" in r.getMessage() for r in caplog.records)


async def test_a_transition_while_the_link_is_down_is_posted_once_after_it(
    live, fake_slack, emulator
):
    connects = live.push.connects
    emulator.push.fault("drop")
    await wait_until(lambda: live.push.state != "live", WAIT)
    # While the app is away the batch moves; the emulator keeps the message for the group,
    # but the app must not count on that: after reconnecting it polls every watch once.
    emulator.set_status(JOB, "IN_PROGRESS")
    await wait_until(lambda: live.push.state == "live" and live.push.connects > connects, WAIT)
    await wait_until(lambda: len(replies(fake_slack)) == 1, WAIT)
    await settled(live)
    assert len(replies(fake_slack)) == 1
    assert "Scheduled → In progress" in replies(fake_slack)[0]["text"]


async def test_polling_returns_at_once_when_the_link_goes_down(live, emulator):
    watcher = live.deps.watcher
    assert watcher.interval() >= 900
    poll = await live.store.get_poll(JOB, None)
    assert poll is not None and poll.next_poll_at > watcher._budget._clock() + 600
    emulator.push.fault("silence")  # no heart-beats: the client must notice by itself
    await wait_until(lambda: live.push.state != "live", 30)

    async def back_to_a_minute() -> bool:
        poll = await live.store.get_poll(JOB, None)
        return poll is not None and poll.next_poll_at <= watcher._budget._clock() + 60

    await wait_until(back_to_a_minute, WAIT)  # the safety net's wait is cut at once
    emulator.push.fault("resume")


async def test_refused_credentials_are_logged_once_and_polling_goes_on(emulator, started, caplog):
    caplog.set_level(logging.ERROR, logger="otajob.push")
    url = await emulator.start_push()
    runtime = await started(IOT_PUSH_URL=url, WATCH_POLL_SECONDS="60")
    runtime.push.credentials = StaticCredentials(Credential(TEST_KEY_ID, "not-the-secret"))
    runtime.start()
    await wait_until(lambda: runtime.push.state == "refused", WAIT)
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and "passcode does not match" in refusals[0]
    assert "not-the-secret" not in refusals[0] and TEST_KEY_SECRET not in refusals[0]
    assert runtime.deps.watcher.interval() == 60  # polled as without push


async def test_bad_push_settings_are_logged_and_the_app_polls(emulator, started, caplog):
    caplog.set_level(logging.ERROR, logger="otajob")
    runtime = await started(IOT_PUSH_URL="amqps://somewhere:5671")
    assert runtime.push is None
    assert any("IOT_PUSH_URL not understood" in r.getMessage() for r in caplog.records)


async def test_device_results_fire_the_alert_within_seconds(emulator, started, fake_slack):
    emulator.add_job(fixtures.make_job(JOB))  # in progress
    emulator.set_tasks(JOB, {"IN_PROGRESS": 20})
    url = await emulator.start_push()
    runtime = await started(IOT_PUSH_URL=url, WATCH_POLL_SECONDS="60")
    runtime.deps.watcher.live.device_debounce = 0.2
    runtime.deps.watcher.live.device_gap = 0.5
    runtime.start()
    await wait_until(lambda: runtime.push.state == "live", WAIT)
    await command(runtime, fake_slack, f"watch {JOB} alert failed>5")
    await fake_slack.wait_for_messages(CHANNEL, 1, WAIT)
    await settled(runtime)
    polls = emulator.count("QueryOTAJob")
    for n in range(8):  # a storm of results: one poll per debounce window, not one each
        emulator.set_task_status(JOB, f"dev-{n + 1:06d}", "FAILED", "flash write failed")
    await wait_until(
        lambda: any("alert" in json.dumps(r).lower() for r in replies(fake_slack)), WAIT
    )
    await settled(runtime)
    assert emulator.count("QueryOTAJob") - polls <= 3


async def test_watches_and_healthz_say_live(live, fake_slack):
    await command(live, fake_slack, "watches", key="w")
    (post,) = await fake_slack.wait_for_posts("w", 1, WAIT)
    assert "live, pushed by Alibaba Cloud" in json.dumps(post.body)
    from bot.server import build_web_app

    app = build_web_app(live, mode="http")
    healthz = next(r for r in app.router.routes() if r.resource.canonical == "/healthz")
    response = await healthz.handler(None)
    assert json.loads(response.body)["push"] == "live"
