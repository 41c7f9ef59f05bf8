"""Events API end to end: ``@otajob <JobId>`` answered in a thread under the mention (once,
whatever Slack retries), mistakes answered only to the person, and the App Home tab
listing the batches watched in the channels the person is in."""

from __future__ import annotations

import json

import pytest

from bot.emulator import fixtures
from tests.helpers import POSTGRES_URL, fresh_postgres, need_postgres, start_runtime, wait_until
from tests.surfaces import (
    buttons,
    click,
    dispatch,
    dump,
    handled,
    home_opened,
    mention,
    slack,
)

JOB = fixtures.EXAMPLE_JOB_ID_UNMASKED
CHANNEL = "C123"
MENTION_TS = "1700000000.000200"


@pytest.fixture
async def runtime(emulator, started):
    # No throttling: these tests are about what is posted, not the quota (the Home tab's
    # counts go at background priority, half of IOT_QPS: seconds per tab otherwise).
    emulator.qps = 0
    return await started(IOT_QPS="1000")


def deliveries(runtime) -> list[bool]:
    """Record what the store answers for each event_id it is asked about (True: first)."""
    seen: list[bool] = []
    first_delivery = runtime.store.first_delivery

    async def spy(*args, **kwargs) -> bool:
        first = await first_delivery(*args, **kwargs)
        seen.append(first)
        return first

    runtime.store.first_delivery = spy
    return seen


async def mention_answered(fake_slack, n: int = 1) -> dict:
    """Wait for the n-th card to be posted and edited with its counts; the message."""
    await fake_slack.wait_for_calls("chat.postMessage", n)
    update = (await fake_slack.wait_for_calls("chat.update", n))[n - 1]
    (message,) = [m for m in fake_slack.messages(CHANNEL) if m["ts"] == update.args["ts"]]
    return message


# --- @otajob <JobId> ---------------------------------------------------------------------


async def test_mention_posts_the_card_in_a_thread_then_adds_device_counts(
    runtime, fake_slack, emulator
):
    emulator.set_tasks(JOB, {"SUCCEEDED": 60, "FAILED": 6, "QUEUED": 30, "IN_PROGRESS": 4})
    response = await mention(runtime, fake_slack, f"@otajob {JOB}", ts=MENTION_TS)
    assert response.status == 200
    card = await mention_answered(fake_slack)
    (post,) = fake_slack.calls_to("chat.postMessage")
    assert post.args["channel"] == CHANNEL and post.args["thread_ts"] == MENTION_TS
    assert "Counting devices" in dump(post.args["blocks"])
    (update,) = fake_slack.calls_to("chat.update")
    assert update.args["ts"] == card["ts"] and update.args["channel"] == CHANNEL
    # Edited in place: one message, a reply under the mention, nothing top-level.
    assert fake_slack.top_level(CHANNEL) == []
    assert [m["ts"] for m in fake_slack.messages(CHANNEL)] == [card["ts"]]
    assert card["thread_ts"] == MENTION_TS
    text = dump(card["blocks"])
    assert JOB in text and "66% done (66 of 100)" in text and "6 failed" in text
    assert "Counting devices" not in text
    assert fake_slack.ephemerals == []
    assert emulator.count("QueryOTAJob") == 1 and emulator.count("ListOTATaskByJob") == 7
    assert set(buttons(card["blocks"])) == {"job_refresh", "job_failed", "job_watch"}  # no Share


async def test_mention_inside_a_thread_answers_in_that_thread(runtime, fake_slack, emulator):
    parent = "1700000000.000100"
    await mention(runtime, fake_slack, f"@otajob {JOB}", ts="1700000000.000300", thread_ts=parent)
    card = await mention_answered(fake_slack)
    assert card["thread_ts"] == parent
    assert fake_slack.calls_to("chat.postMessage")[0].args["thread_ts"] == parent
    assert fake_slack.top_level(CHANNEL) == []


async def test_the_bot_mention_may_be_anywhere_and_name_itself(runtime, fake_slack):
    """Slack writes the mention as <@UBOT> or <@UBOT|otajob>; other words around it stay."""
    await mention(runtime, fake_slack, f"{JOB} @otajob", labels=True)
    card = await mention_answered(fake_slack)
    assert JOB in dump(card["blocks"])


async def test_a_retried_event_is_answered_once(runtime, fake_slack, emulator):
    """Slack delivers again (X-Slack-Retry-Num) when the ack was late: one card only."""
    seen = deliveries(runtime)
    first = slack(fake_slack).mention(f"@otajob {JOB}", event_id="EvMention1")
    await dispatch(runtime, first)
    await dispatch(runtime, slack(fake_slack).retry(first, 1))
    await wait_until(lambda: len(seen) == 2)
    await mention_answered(fake_slack)
    assert sorted(seen) == [False, True]
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert len(fake_slack.calls_to("chat.update")) == 1
    assert emulator.count("QueryOTAJob") == 1

    # A new event (someone mentioning again) is a new question: it is answered.
    await mention(runtime, fake_slack, f"@otajob {JOB}", event_id="EvMention2")
    await mention_answered(fake_slack, 2)
    assert seen[-1] is True and len(fake_slack.messages(CHANNEL)) == 2


@pytest.mark.xdist_group("postgres")  # the PostgreSQL tests share one database
async def test_a_retry_reaching_another_replica_is_answered_once(
    emulator, fake_slack, postgres_turn
):
    """Two replicas on one PostgreSQL: the retry of an event one of them answered, landing
    on the other, is not answered again (SQLite serves one process: test_one_process.py)."""
    need_postgres()
    emulator.qps = 0
    url = await fresh_postgres(POSTGRES_URL)
    one = await start_runtime(emulator, fake_slack, DATABASE_URL=url, IOT_QPS="1000")
    other = await start_runtime(emulator, fake_slack, DATABASE_URL=url, IOT_QPS="1000")
    try:
        seen_here, seen_there = deliveries(one), deliveries(other)
        first = slack(fake_slack).mention(f"@otajob {JOB}", event_id="EvMention1")
        await dispatch(one, first)
        await mention_answered(fake_slack)
        await dispatch(other, slack(fake_slack).retry(first, 1))
        await wait_until(lambda: len(seen_there) == 1)
        assert seen_here == [True] and seen_there == [False]
        assert len(fake_slack.calls_to("chat.postMessage")) == 1
    finally:
        await other.aclose()
        await one.aclose()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("@otajob not-a-job!", "does not look like a JobId"),
        ("@otajob HvKuBpuk3rdk6E92CP****0200", "has `*` in it"),
        ("@otajob help", "How to use /otajob"),
        ("@otajob", "How to use /otajob"),
        (f"@otajob watch {JOB}", "In a mention I show a batch"),
        (f"@otajob {JOB} failed", "In a mention I show a batch"),
    ],
)
async def test_mistakes_and_other_requests_are_answered_only_to_the_person(
    runtime, fake_slack, emulator, text, says
):
    await mention(runtime, fake_slack, text, user_id="U777", ts=MENTION_TS)
    await fake_slack.wait_for_calls("chat.postEphemeral")
    (note,) = fake_slack.ephemerals
    assert (note["channel"], note["user"], note["thread_ts"]) == (CHANNEL, "U777", MENTION_TS)
    assert says in note["text"] + dump(note["blocks"])
    assert fake_slack.messages(CHANNEL) == []
    assert fake_slack.calls_to("chat.postMessage") == []
    assert emulator.count("QueryOTAJob") == 0  # nothing worth asking Alibaba Cloud


async def test_an_unknown_batch_is_answered_only_to_the_person(runtime, fake_slack, emulator):
    await mention(runtime, fake_slack, "@otajob NoSuchJob00000000000000001", ts=MENTION_TS)
    await fake_slack.wait_for_calls("chat.postEphemeral")
    (note,) = fake_slack.ephemerals
    text = dump(note["blocks"])
    assert "iot.ota.JobNotFound" in text and "RequestId" in text
    (call,) = [c for c in emulator.calls if c.action == "QueryOTAJob"]
    assert call.code == "iot.ota.JobNotFound"
    assert note["thread_ts"] == MENTION_TS
    assert fake_slack.messages(CHANNEL) == []
    assert emulator.count("ListOTATaskByJob") == 0  # no counts for a batch that is not there


async def test_hostile_batch_data_in_a_mention_mentions_no_one(runtime, fake_slack, emulator):
    emulator.set_tasks(
        fixtures.HOSTILE_JOB_ID,
        {"FAILED": 2, "SUCCEEDED": 1},
        failure_reasons=[fixtures.HOSTILE_TEXT],
    )
    await mention(runtime, fake_slack, f"@otajob {fixtures.HOSTILE_JOB_ID}")
    card = await mention_answered(fake_slack)
    sent = [
        c.args for c in fake_slack.calls_to("chat.postMessage") + fake_slack.calls_to("chat.update")
    ]
    for shown in (*sent, card):
        text = json.dumps({k: shown.get(k) for k in ("text", "blocks")}, ensure_ascii=False)
        assert "<@" not in text and "<!channel>" not in text and "<http://evil" not in text
    assert "&lt;!channel&gt;" in dump(card["blocks"])


# --- App Home ----------------------------------------------------------------------------

MINE = "Hm1nEjOb0000000000000a0200"
ALSO_MINE = "Hm2nEjOb0000000000000b0200"
NOT_MINE = "HnOtMiNe0000000000000c0200"


async def watch(runtime, job_id: str, channel: str, user: str = "U123") -> None:
    result = await runtime.deps.watcher.watch(
        job_id=job_id, instance_id=None, channel_id=channel, user_id=user, user_name="alice"
    )
    assert result.watch is not None and result.watch.card_ts, result


@pytest.fixture
async def watched(runtime, fake_slack, emulator):
    """U123 is in #ops (two batches watched); #secret (one batch) is not theirs."""
    fake_slack.add_channel("C0PS", "ops", members=("U123", "U456"))
    fake_slack.add_channel("C5EC", "secret", members=("U999",))
    for job_id, name in ((MINE, "gw-mine"), (ALSO_MINE, "gw-also-mine"), (NOT_MINE, "gw-hidden")):
        emulator.add_job(fixtures.make_job(job_id, Name=name))
    emulator.set_tasks(MINE, {"SUCCEEDED": 60, "FAILED": 6, "QUEUED": 30, "IN_PROGRESS": 4})
    emulator.set_tasks(ALSO_MINE, {"SUCCEEDED": 10})
    emulator.set_tasks(NOT_MINE, {"FAILED": 10})
    await watch(runtime, MINE, "C0PS")
    await watch(runtime, ALSO_MINE, "C0PS")
    await watch(runtime, NOT_MINE, "C5EC", user="U999")
    return runtime


def rows(view: dict) -> list[dict]:
    return [b for b in view["blocks"] if b["type"] == "section" and b.get("accessory")]


async def test_home_lists_batches_watched_in_the_persons_channels(watched, fake_slack, emulator):
    await home_opened(watched, fake_slack, "U123", event_id="EvHome1")
    first, second = [c.args for c in await fake_slack.wait_for_calls("views.publish", 2)]
    assert first["user_id"] == second["user_id"] == "U123"
    # At once, from what the watchers last read: no counts yet, reading under way.
    assert "Reading the newest batches" in dump(first["view"])
    assert "Device results not read yet" in dump(first["view"])
    view = second["view"]
    assert fake_slack.home["U123"]["blocks"] == view["blocks"]
    text = dump(view)
    assert MINE in text and ALSO_MINE in text and "gw-mine" in text
    assert NOT_MINE not in text and "gw-hidden" not in text and "C5EC" not in text
    assert "Reading the newest" not in text and "Device results not read yet" not in text
    by_job = {next(j for j in (MINE, ALSO_MINE) if j in dump(r)): r for r in rows(view)}
    assert set(by_job) == {MINE, ALSO_MINE}
    mine = dump(by_job[MINE])
    assert "in progress" in mine.lower()
    assert "66% done" in mine and "9.1% failed" in mine and "<#C0PS>" in mine
    assert "100% done" in dump(by_job[ALSO_MINE])
    for job_id, row in by_job.items():
        button = row["accessory"]
        assert button["text"]["text"] == "Open card" and button["action_id"] == "home_open"
        (watch_row,) = await watched.store.live_watches(job_id=job_id, channel_id="C0PS")
        permalink_ts = "p" + watch_row.card_ts.replace(".", "")
        assert button["url"] == f"https://fake.slack.com/archives/C0PS/{permalink_ts}"
    # The counts read are kept for the next opening.
    poll = await watched.store.get_poll(MINE, None)
    assert poll is not None and json.loads(poll.counts_json)["FAILED"] == 6
    assert emulator.count("ListOTATaskByJob") == 14  # two batches, seven statuses each


async def test_home_opened_again_shows_the_stored_counts_at_once(watched, fake_slack, emulator):
    """Opened again within 30 s: what was read is shown at once, and nothing is re-read."""
    await home_opened(watched, fake_slack, "U123", event_id="EvHome1")
    await fake_slack.wait_for_calls("views.publish", 2)
    calls = len(emulator.calls)
    await home_opened(watched, fake_slack, "U123", event_id="EvHome2")
    views = [c.args["view"] for c in await fake_slack.wait_for_calls("views.publish", 3)]
    assert "Reading the newest" not in dump(views[2]) and "66% done" in dump(views[2])
    await handled()
    assert len(fake_slack.calls_to("views.publish")) == 3 and len(emulator.calls) == calls


async def test_home_refresh_button_republishes(watched, fake_slack, emulator):
    await home_opened(watched, fake_slack, "U123", event_id="EvHome1")
    await fake_slack.wait_for_calls("views.publish", 2)
    view = fake_slack.home["U123"]
    assert "home_refresh" in buttons(view["blocks"])
    # The counts were read a moment ago; the button must not answer from the service's cache.
    emulator.set_tasks(MINE, {"SUCCEEDED": 90, "FAILED": 10})
    await click(
        watched,
        fake_slack,
        "home_refresh",
        "refresh",
        key=None,
        user_id="U123",
        where="home",
        view_id=view["id"],
    )
    republished = [c.args for c in await fake_slack.wait_for_calls("views.publish", 4)]
    assert {c["user_id"] for c in republished} == {"U123"}
    assert "Reading the newest" in dump(republished[2]["view"])
    assert "Reading the newest" not in dump(fake_slack.home["U123"])
    assert MINE in dump(fake_slack.home["U123"]) and NOT_MINE not in dump(fake_slack.home["U123"])
    assert "100% done · 10.0% failed" in dump(fake_slack.home["U123"])  # read afresh
    assert fake_slack.posts == []  # a Home tab has no response_url: nothing goes to one


async def test_home_shows_nothing_of_channels_the_person_is_not_in(watched, fake_slack):
    await home_opened(watched, fake_slack, "U999", event_id="EvHome9")
    await fake_slack.wait_for_calls("views.publish", 2)
    text = dump(fake_slack.home["U999"])
    assert NOT_MINE in text and MINE not in text and ALSO_MINE not in text


async def test_hostile_batch_names_on_the_home_tab_mention_no_one(runtime, fake_slack, emulator):
    fake_slack.add_channel("C0PS", "ops", members=("U123",))
    emulator.add_job(fixtures.make_job(MINE, Name=fixtures.HOSTILE_TEXT))
    await watch(runtime, MINE, "C0PS")
    await home_opened(runtime, fake_slack, "U123", event_id="EvHome1")
    views = [c.args["view"] for c in await fake_slack.wait_for_calls("views.publish", 2)]
    for view in views:
        text = dump(view)
        assert "&lt;!channel&gt;" in text
        assert "<!channel>" not in text and "<@U123>" not in text and "<http://evil" not in text


async def test_home_with_nothing_watched_says_so(runtime, fake_slack, emulator):
    await home_opened(runtime, fake_slack, "U123", event_id="EvHome1")
    (call,) = await fake_slack.wait_for_calls("views.publish")
    assert "Nothing is watched in the channels you are in" in dump(call.args["view"])
    assert "Reading the newest" not in dump(call.args["view"])
    await handled()
    assert len(fake_slack.calls_to("views.publish")) == 1  # nothing to read afresh
    assert emulator.calls == []


async def test_home_for_a_person_in_none_of_the_watching_channels_says_so(watched, fake_slack):
    await home_opened(watched, fake_slack, "U000", event_id="EvHome0")
    (call,) = await fake_slack.wait_for_calls("views.publish")
    assert "Nothing is watched in the channels you are in" in dump(call.args["view"])


async def test_messages_tab_publishes_nothing(watched, fake_slack):
    seen = deliveries(watched)
    response = await home_opened(watched, fake_slack, "U123", tab="messages")
    assert response.status == 200
    await handled()
    assert fake_slack.calls_to("views.publish") == [] and fake_slack.home == {}
    assert seen == []  # not even recorded as seen


async def test_home_opened_retry_is_published_once(watched, fake_slack):
    seen = deliveries(watched)
    first = slack(fake_slack).home_opened("U123", event_id="EvHome1")
    await dispatch(watched, first)
    await dispatch(watched, slack(fake_slack).retry(first, 1))
    await wait_until(lambda: len(seen) == 2)
    await fake_slack.wait_for_calls("views.publish", 2)
    assert sorted(seen) == [False, True]
    await handled()
    assert len(fake_slack.calls_to("views.publish")) == 2


@pytest.mark.slow
async def test_many_watches_stay_within_a_home_tabs_blocks(runtime, fake_slack, emulator):
    fake_slack.add_channel("C0PS", "ops", members=("U123",))
    fake_slack.add_channel("C0P2", "ops-2", members=("U123",))
    for i in range(40):
        job_id = f"MaNy{i:018d}0200"
        emulator.add_job(fixtures.make_job(job_id, Name=f"batch-{i}"))
        await watch(runtime, job_id, "C0PS" if i % 2 else "C0P2")
    await home_opened(runtime, fake_slack, "U123", event_id="EvHome1")
    views = [c.args["view"] for c in await fake_slack.wait_for_calls("views.publish", 2, 10)]
    for view in views:
        assert len(view["blocks"]) <= 100
    shown = rows(views[-1])
    assert len(shown) == 30  # the rest are counted, not dropped silently
    assert all(r["accessory"]["url"].startswith("https://fake.slack.com/") for r in shown)
    assert "…and 10 more" in dump(views[-1]) and "/otajob watches all" in dump(views[-1])
    # Only the first rows are read afresh when the tab opens: 10 batches, 7 counts each.
    assert emulator.count("ListOTATaskByJob") == 70


async def test_refreshing_a_mentions_card_keeps_it_public(runtime, fake_slack, emulator):
    """The card's Refresh keeps it a card for everyone: still no Share, no write actions."""
    await mention(runtime, fake_slack, f"@otajob {JOB}")
    await fake_slack.wait_for_calls("chat.update", 1)
    (card,) = [m for m in fake_slack.messages("C123") if m.get("thread_ts")]
    value = buttons(card["blocks"])["job_refresh"]["value"]
    await click(runtime, fake_slack, "job_refresh", value)
    posts = await fake_slack.wait_for_posts("b1", 2)
    assert set(buttons(posts[-1].body["blocks"])) == {"job_refresh", "job_failed", "job_watch"}
