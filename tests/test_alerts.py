"""Failure alerts on watches: the rule (pure), and the watcher posting an alert once per
crossing, in the thread and the channel, mentioning only the configured people."""

from __future__ import annotations

import json

import pytest

from bot.emulator import fixtures
from bot.iot.models import TaskCounts
from bot.watch.alerts import MIN_FINISHED_FOR_RATE, AlertRule, step
from tests.surfaces import answer, command, dump

JOB = "AlertJob00000000000000001"
CHANNEL = "C123"


def counts(**by_status: int) -> TaskCounts:
    return TaskCounts(counts=by_status)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("failed>5%", AlertRule(5, True)),
        ("FAILED>20", AlertRule(20, False)),
        ("fail>0.5%", AlertRule(0.5, True)),
        ("failed > 5 %", AlertRule(5, True)),
        ("failed>100%", None),
        ("failed<5%", None),
        ("succeeded>5", None),
        ("failed>", None),
        ("failed>-1", None),
    ],
)
def test_rules_parse(text, rule) -> None:
    assert AlertRule.parse(text) == rule
    if rule:
        assert AlertRule.parse(rule.text) == rule


def test_a_rate_waits_for_enough_devices_with_a_result() -> None:
    rule = AlertRule(5, True)
    assert rule.above(counts(FAILED=1, SUCCEEDED=1)) is None
    enough = MIN_FINISHED_FOR_RATE
    assert rule.above(counts(FAILED=2, SUCCEEDED=enough - 2)) is True  # 10 %
    assert rule.above(counts(FAILED=1, SUCCEEDED=enough - 1, QUEUED=1000)) is False  # 5 %


def test_a_count_rule_needs_no_sample() -> None:
    assert AlertRule(20, False).above(counts(FAILED=21)) is True
    assert AlertRule(20, False).above(counts(FAILED=20)) is False


@pytest.mark.parametrize(
    ("alerting", "failed", "fire", "after", "recovered"),
    [
        (False, 25, True, True, False),  # crosses: fire once
        (True, 30, False, True, False),  # still above: quiet
        (True, 10, False, False, True),  # back under: recovered
        (False, 10, False, False, False),  # under and was under: nothing
    ],
)
def test_steps(alerting, failed, fire, after, recovered) -> None:
    decision = step(AlertRule(20, False), counts(FAILED=failed), alerting)
    assert (decision.fire, decision.alerting, decision.recovered) == (fire, after, recovered)


@pytest.fixture
async def runtime(emulator, fake_slack, started):
    emulator.add_job(fixtures.make_job(JOB))
    emulator.set_tasks(JOB, {"SUCCEEDED": 100, "QUEUED": 500})
    # Whom people pick from autocomplete in these commands (@oncall is nobody here).
    fake_slack.directory.add_user("U0ONCALL1", "olga")
    fake_slack.directory.add_usergroup("S0FW1", "fw")
    return await started(WATCH_POLL_SECONDS="1")


def replies(fake_slack) -> list[dict]:
    (card,) = fake_slack.top_level(CHANNEL)
    return fake_slack.thread(CHANNEL, card["ts"])[1:]


@pytest.mark.slow
async def test_alert_fires_once_per_crossing(runtime, fake_slack, emulator):
    text = f"watch {JOB} alert failed>5% notify @olga @fw"
    await command(runtime, fake_slack, text)
    (answer,) = await fake_slack.wait_for_posts("r1")
    assert "Alert when `failed&gt;5%`" in dump(answer)
    watcher = runtime.deps.watcher

    await watcher.poll(JOB, None)  # 0 failed of 100: nothing
    assert replies(fake_slack) == []

    emulator.set_tasks(JOB, {"SUCCEEDED": 100, "FAILED": 8, "QUEUED": 492})  # 7.4 %
    await watcher.poll(JOB, None)
    (alert,) = replies(fake_slack)
    assert alert["reply_broadcast"] is True
    assert "<@U0ONCALL1>" in alert["text"] and "<!subteam^S0FW1>" in alert["text"]
    assert "8 failed (7.4% of 108 with a result)" in alert["text"]

    await watcher.poll(JOB, None)  # still above: no second alert
    assert len(replies(fake_slack)) == 1

    emulator.set_tasks(JOB, {"SUCCEEDED": 300, "FAILED": 8, "QUEUED": 292})  # 2.6 %
    await watcher.poll(JOB, None)
    recovered = replies(fake_slack)[-1]
    assert "Back under" in recovered["text"] or "Recovered" in recovered["text"]
    assert "<@" not in json.dumps(recovered) and not recovered.get("reply_broadcast")

    emulator.set_tasks(JOB, {"SUCCEEDED": 300, "FAILED": 40, "QUEUED": 260})  # 11.8 %
    await watcher.poll(JOB, None)
    again = replies(fake_slack)[-1]
    assert "Failure alert" in again["text"] and again["reply_broadcast"] is True
    watch = (await runtime.store.live_watches())[0]
    assert watch.alerting and watch.alerts_sent == 2
    # The card shows the counts the alert was judged on.
    (card,) = fake_slack.top_level(CHANNEL)
    assert "40 failed" in json.dumps(card["blocks"], ensure_ascii=False)
    # Only the configured IDs were ever mentioned, in every message the app posted.
    for message in fake_slack.messages(CHANNEL):
        found = set(re_mentions(json.dumps(message, ensure_ascii=False)))
        assert found <= {"<@U0ONCALL1>", "<!subteam^S0FW1>"}


def re_mentions(text: str) -> list[str]:
    import re

    return re.findall(r"<@[A-Z0-9]+>|<!subteam\^[A-Z0-9]+>|<!(?:here|channel|everyone)>", text)


async def test_counts_are_read_only_for_watches_with_alerts(runtime, fake_slack, emulator):
    await command(runtime, fake_slack, f"watch {JOB}")
    await fake_slack.wait_for_posts("r1")
    before = emulator.count("ListOTATaskByJob")
    await runtime.deps.watcher.poll(JOB, None)
    assert emulator.count("ListOTATaskByJob") == before


async def test_watching_again_sets_the_alert(runtime, fake_slack, emulator):
    await command(runtime, fake_slack, f"watch {JOB}")
    await fake_slack.wait_for_posts("r1")
    await command(runtime, fake_slack, f"watch {JOB} alert failed>20", key="r2")
    (answer,) = await fake_slack.wait_for_posts("r2")
    assert "its alert is now `failed&gt;20`" in dump(answer)
    (watch,) = await runtime.store.live_watches()
    assert watch.alert_rule == "failed>20" and watch.notify == ()
    assert len(fake_slack.top_level(CHANNEL)) == 1  # still one card


async def test_an_alert_counts_in_the_poll_budget(runtime, fake_slack, emulator):
    """A job with an alert costs eight calls a poll: the interval stretches for it."""
    watcher = runtime.deps.watcher
    watcher.settings = type(watcher.settings)(poll_seconds=1, budget_per_second=1)
    for i in range(4):
        job = f"AlertJob0000000000000010{i}"
        emulator.add_job(fixtures.make_job(job))
        await command(runtime, fake_slack, f"watch {job} alert failed>5%", key=f"w{i}")
    for i in range(4):  # each watch is set up after its ack, concurrently with the others
        await fake_slack.wait_for_posts(f"w{i}")
    await watcher.tick()
    # 4 polls + 4 x 7 count calls = 32 calls a round at 0.8 call/s.
    assert watcher.interval() == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"watch {JOB} alert failed>5% notify @here", "never notifies a whole channel"),
        (f"watch {JOB} alert failed>5% notify @oncall", "autocomplete"),
        (f"watch {JOB} notify @olga", "goes with an alert"),
        (f"watch {JOB} alert sometimes", "is not an alert I understand"),
    ],
)
async def test_alert_mistakes_are_answered_without_posting(runtime, fake_slack, text, reason):
    said = await answer(runtime, fake_slack, text)
    assert reason in json.dumps(said, ensure_ascii=False)
    assert fake_slack.top_level(CHANNEL) == []


async def test_a_batch_that_crosses_and_finishes_between_polls_still_alerts(
    runtime, fake_slack, emulator
):
    await command(runtime, fake_slack, f"watch {JOB} alert failed>20 notify @olga")
    await fake_slack.wait_for_posts("r1")
    emulator.set_tasks(JOB, {"SUCCEEDED": 500, "FAILED": 100})
    emulator.set_status(JOB, "COMPLETED")
    await runtime.deps.watcher.poll(JOB, None)
    alert, final = replies(fake_slack)
    assert "Failure alert" in alert["text"] and "<@U0ONCALL1>" in alert["text"]
    assert "Completed" in final["text"]
    assert emulator.count("ListOTATaskByJob") == 7  # read once for both


async def test_alert_off_removes_the_alert_and_keeps_the_watch(runtime, fake_slack, emulator):
    await command(runtime, fake_slack, f"watch {JOB} alert failed>20")
    await fake_slack.wait_for_posts("r1")
    await command(runtime, fake_slack, f"watch {JOB} alert off", key="r2")
    (answer,) = await fake_slack.wait_for_posts("r2")
    assert "without an alert now" in dump(answer)
    (watch,) = await runtime.store.live_watches()
    assert watch.alert_rule is None and watch.notify == ()
    emulator.set_tasks(JOB, {"SUCCEEDED": 10, "FAILED": 90})
    before = emulator.count("ListOTATaskByJob")
    await runtime.deps.watcher.poll(JOB, None)
    assert replies(fake_slack) == [] and emulator.count("ListOTATaskByJob") == before
