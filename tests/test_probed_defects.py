"""Defects found by probing the running app as a person in real Slack, as an attacker and
as an unlucky operator would; each test sends requests exactly as Slack does (the
faithful builder) and reads answers from the fake Slack and the emulator over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qs, urlencode

import httpx
import pytest

from bot.emulator import fixtures
from bot.slack.grammar import (
    BadInput,
    DeviceJobs,
    FailedDevices,
    FirmwareJobs,
    ListWatches,
    QueryJob,
    ShowHelp,
    UnwatchJob,
    WatchJob,
    parse_command,
)
from bot.watch.alerts import AlertRule
from fakes.inbound import checkboxes
from tests.helpers import start_runtime, wait_until
from tests.surfaces import answer, command, dispatch, dump, slack, submit

J = "ProbeJob00000000000000001"
CHANNEL = "C123"


@pytest.fixture
async def runtime(emulator, started):
    emulator.add_job(fixtures.make_job(J))
    emulator.set_tasks(J, {"SUCCEEDED": 30, "FAILED": 3, "QUEUED": 10})
    return await started()


def wire_text(request) -> str:
    """The `text` field of a slash command as the builder sent it."""
    return parse_qs(request.raw_body, keep_blank_values=True)["text"][0]


# --- 1. escaped input -----------------------------------------------------------------


async def test_an_alert_typed_in_slack_is_set(runtime, fake_slack, emulator):
    """`/otajob watch <JobId> alert failed>5% notify @oncall`, sent as Slack sends it
    (`failed&gt;5%`, `<!subteam^S…|@oncall>`), sets the alert."""
    fake_slack.directory.add_usergroup("S0ONCALL", "oncall", ("U0ONCALL1",))
    request = slack(fake_slack).command(f"watch {J} alert failed>5% notify @oncall")
    assert "failed&gt;5%" in wire_text(request) and "<!subteam^S0ONCALL|" in wire_text(request)
    await dispatch(runtime, request)
    (answer,) = await fake_slack.wait_for_posts("r1")
    assert "Alert when `failed&gt;5%`" in dump(answer), dump(answer)
    (watch,) = await runtime.store.live_watches()
    assert watch.alert_rule == "failed>5%" and watch.notify == ("S0ONCALL",)


async def test_a_job_id_pasted_in_angle_brackets_shows_the_card(runtime, fake_slack):
    """`/otajob <JobId>` copied with the usage's brackets arrives as `&lt;…&gt;`."""
    request = slack(fake_slack).command(f"<{J}>")
    assert wire_text(request) == f"&lt;{J}&gt;"
    await dispatch(runtime, request)
    posts = await fake_slack.wait_for_posts("r1")
    assert J in dump(posts[0]) and "does not look like" not in dump(posts[0])


async def test_a_refusal_quotes_what_was_typed_once(runtime, fake_slack, emulator):
    """`a&b` is shown back as `a&amp;b` (escaped once for mrkdwn), never `a&amp;amp;b`."""
    said = json.dumps(await answer(runtime, fake_slack, "device a1Gw7Tk9Lmp a&b"))
    assert "`a&amp;b`" in said and "&amp;amp;" not in said
    assert emulator.calls == []


def directory_for(fake_slack):
    fake_slack.add_channel("C0OPS", "ops", members=("U123",))
    fake_slack.directory.add_user("U0ANN", "ann")
    fake_slack.directory.add_usergroup("S0FW", "fw-oncall")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("", ShowHelp()),
        ("help", ShowHelp()),
        (J, QueryJob(J)),
        (f"<{J}>", QueryJob(J)),
        (f"{J} instance iot-cn-0pp1n8t1234", QueryJob(J, "iot-cn-0pp1n8t1234")),
        (f"{J} failed", FailedDevices(J)),
        (f"<{J}> failed instance <iot-1a2b>", FailedDevices(J, "iot-1a2b")),
        ("device a1Gw7Tk9Lmp light-0042", DeviceJobs("a1Gw7Tk9Lmp", "light-0042")),
        (
            "device a1Gw7Tk9Lmp light@home:1 firmware <Fw7kGwPkg2d4R8sLqT1Vb30100>",
            DeviceJobs("a1Gw7Tk9Lmp", "light@home:1", "Fw7kGwPkg2d4R8sLqT1Vb30100"),
        ),
        ("firmware Fw7kGwPkg2d4R8sLqT1Vb30100", FirmwareJobs("Fw7kGwPkg2d4R8sLqT1Vb30100")),
        (
            f"watch {J} #ops only completed, canceled quiet",
            WatchJob(J, "C0OPS", None, frozenset({"COMPLETED", "CANCELED"}), True),
        ),
        (
            f"watch <{J}> #ops alert failed > 20 notify @ann, @fw-oncall",
            WatchJob(J, "C0OPS", alert=AlertRule(20, False), notify=("U0ANN", "S0FW")),
        ),
        (f"watch {J} alert failed>5%", WatchJob(J, alert=AlertRule(5, True))),
        (f"watch {J} alert off", WatchJob(J, alert_off=True)),
        (f"unwatch {J} #ops", UnwatchJob(J, "C0OPS")),
        (f"unwatch <{J}>", UnwatchJob(J)),
        ("watches", ListWatches()),
        ("watches all", ListWatches(everywhere=True)),
        # Refused, with the words the person typed.
        (f"watch {J} alert failed>5% notify @here", BadInput("whole_channel", "<!here>")),
        (f"watch {J} alert failed>5% notify @nobody", BadInput("plain_mention", "@nobody")),
        (f"watch {J} #nowhere", BadInput("bad_channel", "#nowhere")),
    ],
)
@pytest.mark.parametrize("labels", [True, False])
async def test_every_readme_command_form_reads_as_typed(fake_slack, typed, expected, labels):
    """Each form in the README, typed in Slack (tokens with or without their labels),
    reads as the person meant."""
    directory_for(fake_slack)
    text = wire_text(slack(fake_slack).command(typed, labels=labels))
    assert parse_command(text) == expected, text


async def test_a_mention_with_a_job_id_in_brackets_and_other_people(runtime, fake_slack):
    """`@otajob <JobId> cc @ann`: the app's own and other mentions are not part of it."""
    fake_slack.directory.add_user("U0ANN", "ann")
    await dispatch(runtime, slack(fake_slack).mention(f"@otajob <{J}>"))
    (card,) = await fake_slack.wait_for_calls("chat.postMessage")
    assert J in json.dumps(card.args)


# --- 2. OTAJOB_ALLOWED_USERS and watches ------------------------------------------------


async def test_an_allowed_person_can_watch_and_unwatch(started, fake_slack, emulator):
    emulator.add_job(fixtures.make_job(J, JobStatus="IN_PROGRESS"))
    runtime = await started(OTAJOB_ALLOWED_USERS="U123")
    await command(runtime, fake_slack, f"watch {J}")
    (answer,) = await fake_slack.wait_for_posts("r1")
    assert "Watching OTA batch" in dump(answer), dump(answer)
    await command(runtime, fake_slack, f"unwatch {J}", key="r2")
    (answer,) = await fake_slack.wait_for_posts("r2")
    assert "Stopped watching" in dump(answer)


# --- 6. a long watch list ----------------------------------------------------------------


async def test_watches_fit_slacks_limits_and_say_how_many_more(runtime, fake_slack):
    now = time.time()
    for n in range(60):
        await runtime.store.add_watch(
            job_id=f"ManyWatches{n:014d}",
            instance_id=None,
            channel_id=CHANNEL,
            created_by="U123",
            created_by_name="a" * 100,
            told_status="IN_PROGRESS",
            only=frozenset(),
            quiet=False,
            now=now,
            expires_at=now + 86400,
            alert_rule="failed>5%",
            notify=("U0ANN",),
        )
    await command(runtime, fake_slack, "watches")
    (answer,) = await fake_slack.wait_for_posts("r1")
    assert answer.error is None  # the fake applies Slack's limits to what is posted
    assert "Watches in this channel* (60)" in dump(answer)
    assert "more, not shown" in dump(answer)


# --- 7. the card searched for after a crash, in a busy channel -----------------------------


async def test_a_card_is_found_after_a_crash_past_two_hundred_messages(
    emulator, fake_slack, monkeypatch
):
    emulator.add_job(fixtures.make_job(J, JobStatus="PLANNED", UtcStartTime=None))
    runtime = await start_runtime(emulator, fake_slack, WATCH_POLL_SECONDS="1")
    try:
        store = runtime.store
        real_finish = store.finish_post

        async def crash(*args, **kwargs):
            raise RuntimeError("killed before the commit")

        monkeypatch.setattr(store, "finish_post", crash)
        await command(runtime, fake_slack, f"watch {J}")
        await fake_slack.wait_for_posts("r1")
        assert len(fake_slack.top_level(CHANNEL)) == 1
        fake_slack.people_say(CHANNEL, (f"chatter {n}" for n in range(450)))
        monkeypatch.setattr(store, "finish_post", real_finish)
        emulator.set_status(J, "IN_PROGRESS")
        await runtime.deps.watcher.poll(J, None)
        cards = [m for m in fake_slack.top_level(CHANNEL) if m.get("bot_id")]
        assert len(cards) == 1
        replies = fake_slack.thread(CHANNEL, cards[0]["ts"])[1:]
        assert "Scheduled → In progress" in replies[-1]["text"]
    finally:
        await runtime.aclose()


# --- 8. membership checks that Slack did not answer -----------------------------------------


async def test_channels_slack_would_not_check_are_named_not_hidden_nor_cached(
    runtime, fake_slack, emulator
):
    now = time.time()
    for channel in ("C0AAA", "C0BBB"):
        fake_slack.add_channel(channel, channel.lower(), members=("U123",))
        await runtime.store.add_watch(
            job_id=J,
            instance_id=None,
            channel_id=channel,
            created_by="U123",
            created_by_name="alice",
            told_status="IN_PROGRESS",
            only=frozenset(),
            quiet=False,
            now=now,
            expires_at=now + 86400,
        )
    # Rate limited past the client's retries (it tries three times).
    fake_slack.fail_next("users.conversations", "ratelimited", count=3, retry_after=0)
    await command(runtime, fake_slack, "watches all")
    (answer,) = await fake_slack.wait_for_posts("r1")
    assert "2 channels with watches could not be checked" in dump(answer), dump(answer)
    await command(runtime, fake_slack, "watches all", key="r2")
    (answer,) = await fake_slack.wait_for_posts("r2")
    assert "could not be checked" not in dump(answer)
    assert "(2)" in dump(answer)
    # One read of the person's channels answers for every watched channel.
    assert len(fake_slack.calls_to("users.conversations")) == 4
    assert fake_slack.calls_to("conversations.members") == []


# --- 10. maps that only grow ------------------------------------------------------------------


async def test_unwatching_any_job_id_leaves_no_lock_behind(runtime, fake_slack):
    for n in range(50):
        await command(runtime, fake_slack, f"unwatch NoSuchJob{n:016d}", key=f"u{n}")
    await fake_slack.wait_for_posts("u49")
    assert len(runtime.deps.watcher._locks) == 0


# --- 12. the workspace check, verbatim text -----------------------------------------------------


async def test_a_payload_without_a_team_is_refused_when_a_team_is_set(
    started, fake_slack, emulator
):
    """Fail closed: with SLACK_TEAM_ID set, a request that names no workspace is refused."""
    runtime = await started(SLACK_TEAM_ID="T0001")
    request = slack(fake_slack).command(J)
    form = {k: v[0] for k, v in parse_qs(request.raw_body).items() if k != "team_id"}
    unnamed = slack(fake_slack).sign(urlencode(form), "application/x-www-form-urlencoded")
    response = await dispatch(runtime, unnamed)
    assert "another Slack workspace" in response.body
    assert emulator.calls == []


async def test_every_mrkdwn_text_the_app_posts_is_verbatim(runtime, fake_slack):
    await command(runtime, fake_slack, J)
    posts = await fake_slack.wait_for_posts("r1")

    def mrkdwn(node):
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                yield node
            for value in node.values():
                yield from mrkdwn(value)
        elif isinstance(node, list):
            for value in node:
                yield from mrkdwn(value)

    found = [t for p in posts for t in mrkdwn(p.body.get("blocks"))]
    assert found and all(t.get("verbatim") is True for t in found)


# --- 3. a write whose answer cannot be read ------------------------------------------------------


async def test_a_cancel_carried_out_behind_an_unreadable_answer_is_recorded(
    started, fake_slack, emulator
):
    """Alibaba Cloud canceled the tasks, but its answer could not be read: the record says
    the cancel may have run, and it is posted."""
    emulator.add_job(fixtures.make_job(J))
    emulator.set_tasks(J, {"QUEUED": 5, "SUCCEEDED": 2})
    runtime = await started(OTAJOB_ACTIONS="cancel", OTAJOB_ADMINS="U123")
    emulator.fail_next("garbled", action="CancelOTATaskByJob")
    private = json.dumps({"job": J, "instance": None, "channel": CHANNEL})
    await submit(
        runtime,
        fake_slack,
        "cancel_confirm",
        private_metadata=private,
        values={"cancel_in_progress": {"in_progress": checkboxes()}},
    )

    async def finished():
        while not [a for a in await runtime.store.actions_for(J) if a["outcome"] != "started"]:
            await asyncio.sleep(0.02)
        return await runtime.store.actions_for(J)

    (row,) = await asyncio.wait_for(finished(), 10)
    assert emulator.task_counts(J)["CANCELED"] == 5
    assert row["outcome"] == "failed" and "InvalidResponse" in (row["error"] or "")
    (record,) = await fake_slack.wait_for_messages(CHANNEL)
    assert "no clear answer" in record["text"]


# --- Slack's rate limits: a card is never left saying "running" -----------------------------


async def test_a_final_card_slack_would_not_edit_is_edited_at_the_next_poll(emulator, fake_slack):
    emulator.add_job(fixtures.make_job(J, JobStatus="IN_PROGRESS"))
    runtime = await start_runtime(emulator, fake_slack, WATCH_POLL_SECONDS="1")
    try:
        await command(runtime, fake_slack, f"watch {J}")
        await fake_slack.wait_for_posts("r1")
        emulator.set_status(J, "COMPLETED")
        # chat.update rate limited past slack_sdk's retries (it tries three times).
        fake_slack.fail_next("chat.update", "ratelimited", count=3, retry_after=0)
        await runtime.deps.watcher.poll(J, None)
        (card,) = fake_slack.top_level(CHANNEL)
        assert "Completed" not in json.dumps(card["blocks"])  # Slack refused the edit
        assert [w.job_id for w in await runtime.store.live_watches()] == [J]  # not ended
        await runtime.deps.watcher.poll(J, None)
        (card,) = fake_slack.top_level(CHANNEL)
        assert "Completed" in json.dumps(card["blocks"])
        assert await runtime.store.live_watches() == []
        replies = fake_slack.thread(CHANNEL, card["ts"])[1:]
        assert len(replies) == 1  # the transition was told once
        summary = json.dumps(replies[0]["blocks"])
        assert "Counting devices" not in summary and "succeeded" in summary
    finally:
        await runtime.aclose()


async def test_a_summary_slack_would_not_edit_in_is_edited_again(emulator, fake_slack, monkeypatch):
    """The quota is busy: the final reply goes out at once, "counting devices", and the
    summary is edited in later by a task of its own. If Slack refuses that edit, the
    task tries again, and the watch stays until the reply has its summary (a reply never
    keeps saying "counting")."""
    from bot.watch import lifecycle

    monkeypatch.setattr(lifecycle, "SUMMARY_WAIT_SECONDS", 0)  # counts never come in time
    monkeypatch.setattr(lifecycle, "SUMMARY_RETRY_SECONDS", 0)  # tries again at once
    emulator.add_job(fixtures.make_job(J, JobStatus="IN_PROGRESS"))
    runtime = await start_runtime(emulator, fake_slack, WATCH_POLL_SECONDS="1")
    try:
        await command(runtime, fake_slack, f"watch {J}")
        await fake_slack.wait_for_posts("r1")
        emulator.set_status(J, "COMPLETED")
        await runtime.deps.watcher.poll(J, None)  # the reply goes out, "counting"
        edits = len(fake_slack.calls_to("chat.update"))  # the card's, done
        # The summary's edit, by its own task once the poll let go of the batch: Slack
        # refuses it past slack_sdk's retries (three tries).
        fake_slack.fail_next("chat.update", "ratelimited", count=3, retry_after=0)
        await fake_slack.wait_for_calls("chat.update", edits + 3)
        (card,) = fake_slack.top_level(CHANNEL)
        (reply,) = fake_slack.thread(CHANNEL, card["ts"])[1:]
        assert "Counting devices" in json.dumps(reply["blocks"])  # the edit was refused
        assert "Completed" in json.dumps(card["blocks"])  # the card's went through
        await fake_slack.wait_for_calls("chat.update", edits + 4)  # the task's next try

        async def ended() -> bool:
            return await runtime.store.live_watches() == []

        await wait_until(ended, 5)
        (reply,) = fake_slack.thread(CHANNEL, card["ts"])[1:]
        summary = json.dumps(reply["blocks"])
        assert "Counting devices" not in summary and "succeeded" in summary
    finally:
        await runtime.aclose()


async def test_an_answer_past_the_response_urls_five_uses_reaches_the_person(runtime, fake_slack):
    """Slack takes five messages on a response_url; the sixth goes out as an ephemeral
    message through the Web API instead of being lost."""
    url = fake_slack.response_url("used")
    async with httpx.AsyncClient() as http:
        for n in range(5):
            await http.post(url, json={"text": f"earlier answer {n}"})
    await command(runtime, fake_slack, J, key="used")
    posts = await fake_slack.wait_for_posts("used", 6)
    assert posts[5].error is not None  # Slack refused the sixth
    calls = await fake_slack.wait_for_calls("chat.postEphemeral")
    shown = json.dumps(calls[0].args)
    assert J in shown and calls[0].args["user"] == "U123" and calls[0].args["channel"] == CHANNEL


async def test_card_links_are_kept_for_the_most_recent_cards_only(runtime, fake_slack, monkeypatch):
    from cachetools import LRUCache

    from bot.db import Watch
    from bot.slack import home

    runtime.deps.kept.card_links = LRUCache(10)  # the real size is 2,000
    base = dict(job_id=J, instance_id=None, channel_id=CHANNEL, created_by="U1")
    for n in range(15):
        watch = Watch(
            id=n,
            **base,
            created_by_name="a",
            created_at=0.0,
            expires_at=0.0,
            only=frozenset(),
            quiet=False,
            card_ts=f"1700000000.{n:06d}",
            told_status=None,
            state="ended",
            note=None,
        )
        assert (await home._permalink(runtime.deps, watch) or "").startswith("https://")
    assert len(runtime.deps.kept.card_links) == 10


async def test_an_interrupted_action_that_could_not_be_told_is_told_next_round(
    runtime, fake_slack, monkeypatch
):
    from bot.slack import action_record

    store = runtime.store
    await store.start_action(
        at=100.0,
        team_id="T0001",
        user_id="U123",
        user_name="alice",
        action="cancel",
        job_id=J,
        instance_id=None,
        channel_id=CHANNEL,
        detail={"cancel": ["queued"], "done": [], "dynamic": False, "finished": False},
    )
    real = action_record._tell_everyone

    async def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(action_record, "_tell_everyone", broken)
    assert await action_record.report_interrupted(runtime.deps, stale_before=200.0) == 0
    monkeypatch.setattr(action_record, "_tell_everyone", real)
    assert await action_record.report_interrupted(runtime.deps, stale_before=200.0) == 1
    (record,) = await fake_slack.wait_for_messages(CHANNEL)
    assert "when otajob stopped" in record["text"]
    assert await action_record.report_interrupted(runtime.deps, stale_before=300.0) == 0


async def test_a_final_card_slack_refuses_for_good_does_not_keep_the_watch(emulator, fake_slack):
    """Only a refusal about timing keeps a finished watch for another try; any other
    (here the card's message is gone) ends it as usual."""
    emulator.add_job(fixtures.make_job(J, JobStatus="IN_PROGRESS"))
    runtime = await start_runtime(emulator, fake_slack, WATCH_POLL_SECONDS="1")
    try:
        await command(runtime, fake_slack, f"watch {J}")
        await fake_slack.wait_for_posts("r1")
        emulator.set_status(J, "COMPLETED")
        fake_slack.fail_next("chat.update", "message_not_found")
        await runtime.deps.watcher.poll(J, None)
        assert await runtime.store.live_watches() == []
    finally:
        await runtime.aclose()
