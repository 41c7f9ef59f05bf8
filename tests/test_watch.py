"""Watchers end to end: the command, the card, thread replies, the final broadcast with
the device summary, against the emulator and the fake Slack."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.emulator import fixtures
from bot.iot.quota import Priority
from tests.helpers import POSTGRES_URL, fresh_postgres, need_postgres, start_runtime, wait_until
from tests.surfaces import answer, click, command

JOB = "WatchJob00000000000000001"
CHANNEL = "C123"


@pytest.fixture
async def runtime(emulator, started):
    emulator.add_job(fixtures.make_job(JOB, JobStatus="PLANNED", UtcStartTime=None))
    return await started(WATCH_POLL_SECONDS="1")


async def reply_to(fake_slack, runtime, text: str, key: str = "r1", **kwargs) -> str:
    await command(runtime, fake_slack, text, key=key, **kwargs)
    (post,) = await fake_slack.wait_for_posts(key)
    return json.dumps(post.body, ensure_ascii=False)


def hold_poll_reads(runtime, monkeypatch) -> tuple[asyncio.Event, asyncio.Event]:
    """Polls' job reads (background priority) wait for the API until ``answer`` is set;
    ``waiting`` is set once one does. A person's reads go as usual."""
    waiting, answer = asyncio.Event(), asyncio.Event()
    read = runtime.deps.service.get_job

    async def held(*args, **kwargs):
        if kwargs.get("priority") == Priority.BACKGROUND:
            waiting.set()
            await answer.wait()
        return await read(*args, **kwargs)

    monkeypatch.setattr(runtime.deps.service, "get_job", held)
    return waiting, answer


def thread(fake_slack, channel: str = CHANNEL) -> list[dict]:
    (card,) = fake_slack.top_level(channel)
    return fake_slack.thread(channel, card["ts"])


async def test_full_lifecycle(runtime, fake_slack, emulator):
    """Card, one reply per transition, one broadcast at the end with device counts; nothing else."""
    await run_lifecycle(runtime, fake_slack, emulator)


@pytest.mark.xdist_group("postgres")  # the PostgreSQL tests share one database
async def test_full_lifecycle_on_postgresql(emulator, fake_slack, postgres_turn):
    """The same lifecycle with the watches in PostgreSQL."""
    need_postgres()
    emulator.add_job(fixtures.make_job(JOB, JobStatus="PLANNED", UtcStartTime=None))
    built = await start_runtime(
        emulator, fake_slack, DATABASE_URL=await fresh_postgres(POSTGRES_URL)
    )
    try:
        await run_lifecycle(built, fake_slack, emulator)
    finally:
        await built.aclose()


async def run_lifecycle(runtime, fake_slack, emulator) -> None:
    answer = await reply_to(fake_slack, runtime, f"watch {JOB}")
    assert "Watching" in answer
    (card,) = fake_slack.top_level(CHANNEL)
    assert card["metadata"]["event_type"] == "otajob_post"
    assert "Watched here" in json.dumps(card["blocks"])
    watcher = runtime.deps.watcher

    await watcher.poll(JOB, None)  # nothing changed: nothing posted
    assert len(thread(fake_slack)) == 1

    emulator.set_status(JOB, "IN_PROGRESS")
    await watcher.poll(JOB, None)
    replies = thread(fake_slack)[1:]
    assert len(replies) == 1 and "Scheduled → In progress" in replies[0]["text"]
    assert not replies[0].get("reply_broadcast")
    assert "In progress" in fake_slack.calls_to("chat.update")[-1].args["text"]

    emulator.set_tasks(JOB, {"SUCCEEDED": 980, "FAILED": 15, "CANCELED": 5})
    emulator.set_status(JOB, "COMPLETED")
    await watcher.poll(JOB, None)
    replies = thread(fake_slack)[1:]
    assert len(replies) == 2
    final = replies[1]
    assert "In progress → Completed" in final["text"] and final.get("reply_broadcast") is True
    summary = json.dumps(final["blocks"], ensure_ascii=False)
    assert "980 succeeded" in summary and "15 failed" in summary and "1,000" in summary
    assert emulator.count("ListOTATaskByJob") == 7

    await watcher.poll(JOB, None)  # the watch has ended: no more polls, no more posts
    assert len(thread(fake_slack)) == 3
    assert await runtime.store.live_watches() == []
    assert len(fake_slack.top_level(CHANNEL)) == 1


async def test_quiet_and_only(runtime, fake_slack, emulator):
    """`only completed` skips the start; `quiet` keeps the final reply in the thread."""
    await reply_to(fake_slack, runtime, f"watch {JOB} only completed quiet")
    watcher = runtime.deps.watcher
    emulator.set_status(JOB, "IN_PROGRESS")
    await watcher.poll(JOB, None)
    assert len(thread(fake_slack)) == 1
    emulator.set_status(JOB, "COMPLETED")
    await watcher.poll(JOB, None)
    replies = thread(fake_slack)[1:]
    assert len(replies) == 1 and "In progress → Completed" in replies[0]["text"]
    assert not replies[0].get("reply_broadcast")


async def test_missed_start_is_reported(runtime, fake_slack, emulator):
    """A batch that started and finished between two polls gets both replies."""
    await reply_to(fake_slack, runtime, f"watch {JOB}")
    emulator.set_status(JOB, "IN_PROGRESS")
    emulator.set_status(JOB, "CANCELED")
    await runtime.deps.watcher.poll(JOB, None)
    texts = [m["text"] for m in thread(fake_slack)[1:]]
    assert len(texts) == 2
    assert "Scheduled → In progress" in texts[0] and "In progress → Canceled" in texts[1]


async def test_watching_twice_and_unwatch_and_listing(runtime, fake_slack, emulator):
    """A second watch says it exists; `watches` lists it; `unwatch` ends it with a note."""
    await reply_to(fake_slack, runtime, f"watch {JOB}", key="a")
    again = await reply_to(fake_slack, runtime, f"watch {JOB}", key="b")
    assert "already watched" in again
    listing = await reply_to(fake_slack, runtime, "watches", key="c")
    assert JOB in listing and "gw-firmware-2.4.1" in listing and "added by alice" in listing
    stopped = await reply_to(fake_slack, runtime, f"unwatch {JOB}", key="d")
    assert "Stopped watching" in stopped
    assert "turned this watch off" in thread(fake_slack)[-1]["text"]
    assert "None" in await reply_to(fake_slack, runtime, "watches", key="e")
    assert "is not watched" in await reply_to(fake_slack, runtime, f"unwatch {JOB}", key="f")


async def test_watching_a_finished_job_posts_its_card_instead(runtime, fake_slack, emulator):
    """A finished batch is not subscribed: its final card is shown in the channel."""
    emulator.set_status(JOB, "COMPLETED")
    await command(runtime, fake_slack, f"watch {JOB}")
    posts = await fake_slack.wait_for_posts("r1", n=2)
    assert {p.body["response_type"] for p in posts} == {"in_channel", "ephemeral"}
    assert "already finished" in json.dumps([p.body for p in posts])
    assert await runtime.store.live_watches() == []


async def test_watch_another_channel_and_the_watch_button(runtime, fake_slack, emulator):
    """`watch <JobId> #other` posts the card there; the card's Watch button watches here."""
    fake_slack.add_channel("C999", name="ops", members=("U123",))
    await reply_to(fake_slack, runtime, f"watch {JOB} #ops")
    assert len(fake_slack.top_level("C999")) == 1 and fake_slack.top_level(CHANNEL) == []
    await click(
        runtime, fake_slack, "job_watch", json.dumps({"job": JOB, "instance": None}), key="w"
    )
    (post,) = await fake_slack.wait_for_posts("w")
    assert "Watching" in post.body["text"] or "Watching" in json.dumps(post.body)
    assert len(fake_slack.top_level(CHANNEL)) == 1


async def test_bad_watch_input_is_explained(runtime, fake_slack, emulator):
    """Unknown states and malformed channels get specific messages and change nothing."""
    for text, says in [
        (f"watch {JOB} only finished", "finished"),
        (f"watch {JOB} #no-such-channel", "#no-such-channel"),
        ("watch", "needs a JobId"),
    ]:
        said = await answer(runtime, fake_slack, text, key=f"r-{text}")
        assert says in said["text"], text
    assert await runtime.store.live_watches() == []


async def test_public_channel_is_joined_private_one_explained(runtime, fake_slack, emulator):
    """Not in a public channel: join it and post. Not in a private one: say how to fix it."""
    fake_slack.add_channel("C777", name="ops", is_member=False, members=("U123",))
    assert "Watching" in await reply_to(fake_slack, runtime, f"watch {JOB} #ops", key="a")
    assert len(fake_slack.top_level("C777")) == 1
    fake_slack.add_channel(
        "G888", name="secret", is_private=True, is_member=False, members=("U123",)
    )
    answer = await reply_to(fake_slack, runtime, f"watch {JOB} #secret", key="b")
    assert "not_in_channel" in answer and "/invite @otajob" in answer


async def test_archived_channel_pauses_the_watch_and_tells_its_owner(runtime, fake_slack, emulator):
    """A channel that cannot take posts pauses the watch and DMs whoever set it up, once."""
    await reply_to(fake_slack, runtime, f"watch {JOB}")
    fake_slack.channels[CHANNEL]["is_archived"] = True
    emulator.set_status(JOB, "IN_PROGRESS")
    watcher = runtime.deps.watcher
    await watcher.poll(JOB, None)
    (watch,) = await runtime.store.live_watches()
    assert watch.state == "paused" and watch.note == "is_archived"
    (dm,) = fake_slack.messages("U123")
    assert "paused" in dm["text"] and "archived" in json.dumps(dm["blocks"])
    await watcher.poll(JOB, None)  # paused watches are not polled; no second DM
    assert len(fake_slack.messages("U123")) == 1
    fake_slack.channels[CHANNEL]["is_archived"] = False
    assert "Watching again" in await reply_to(fake_slack, runtime, f"watch {JOB}", key="again")
    await watcher.poll(JOB, None)
    assert "Scheduled → In progress" in thread(fake_slack)[-1]["text"]


async def test_slack_rate_limit_is_retried(runtime, fake_slack, emulator):
    """A 429 from chat.postMessage is retried after Retry-After and the reply lands once."""
    await reply_to(fake_slack, runtime, f"watch {JOB}")
    fake_slack.fail_next("chat.postMessage", "ratelimited", retry_after=1)
    emulator.set_status(JOB, "IN_PROGRESS")
    await runtime.deps.watcher.poll(JOB, None)
    replies = thread(fake_slack)[1:]
    assert len(replies) == 1 and "In progress" in replies[0]["text"]


async def test_deleted_batch_ends_the_watch_with_a_note(runtime, fake_slack, emulator):
    """A batch the API no longer knows ends the watch, saying so with the API's Code."""
    await reply_to(fake_slack, runtime, f"watch {JOB}")
    del emulator.jobs[JOB]
    await runtime.deps.watcher.poll(JOB, None)
    note = thread(fake_slack)[-1]
    assert "no longer knows this batch" in note["text"]
    assert "iot.ota.JobNotFound" in json.dumps(note["blocks"])
    assert await runtime.store.live_watches() == []


async def test_api_errors_on_a_poll_back_off_quietly(runtime, fake_slack, emulator):
    """Throttling or 5xx on a poll posts nothing and pushes the next poll back."""
    await reply_to(fake_slack, runtime, f"watch {JOB}")
    emulator.fail_next("server_error", count=100)
    before = (await runtime.store.get_poll(JOB, None)).errors
    await runtime.deps.watcher.poll(JOB, None)
    poll = await runtime.store.get_poll(JOB, None)
    assert poll.errors == before + 1
    assert len(thread(fake_slack)) == 1
    import time as clock

    assert poll.next_poll_at - clock.time() >= 0.8  # at least one (1 s) interval, jittered


async def test_expired_watch_ends_with_a_note(runtime, fake_slack, emulator):
    """After WATCH_MAX_DAYS the watch ends and says how to keep watching."""
    await reply_to(fake_slack, runtime, f"watch {JOB}")
    (watch,) = await runtime.store.live_watches()
    await runtime.store.set_watch(watch.id, expires_at=0.0)
    await asyncio.gather(*await runtime.deps.watcher.tick())
    assert "ended after 14 days" in thread(fake_slack)[-1]["text"]
    assert await runtime.store.live_watches() == []


async def test_a_post_slack_accepted_before_a_crash_is_not_repeated(
    runtime, fake_slack, emulator, monkeypatch
):
    """If the app dies between Slack accepting a reply and recording it, the next poll finds
    the reply by its metadata instead of posting it again."""
    await reply_to(fake_slack, runtime, f"watch {JOB}")
    store = runtime.store
    real_finish = store.finish_post

    async def crash(*args, **kwargs):
        raise RuntimeError("killed before the commit")

    monkeypatch.setattr(store, "finish_post", crash)
    emulator.set_status(JOB, "IN_PROGRESS")
    with pytest.raises(RuntimeError):
        await runtime.deps.watcher.poll(JOB, None)
    assert len(thread(fake_slack)) == 2  # Slack has the reply; the database does not
    monkeypatch.setattr(store, "finish_post", real_finish)
    await runtime.deps.watcher.poll(JOB, None)
    assert len(thread(fake_slack)) == 2
    (watch,) = await store.live_watches()
    assert watch.told_status == "IN_PROGRESS"


async def test_the_loop_polls_by_itself(runtime, fake_slack, emulator):
    """Started with the app, the watcher notices a transition within a poll interval."""
    await reply_to(fake_slack, runtime, f"watch {JOB}")
    runtime.start()
    emulator.set_status(JOB, "IN_PROGRESS")
    await fake_slack.wait_for_messages(CHANNEL, 2, timeout=6)  # the card, then a reply
    assert "In progress" in thread(fake_slack)[-1]["text"]


async def test_watches_only_in_channels_the_asker_is_in(runtime, fake_slack, emulator):
    """Nobody can start or stop a watch in a channel they are not in, nor in a DM."""
    fake_slack.add_channel("C555", name="elsewhere", members=("U999",))
    answer = await reply_to(fake_slack, runtime, f"watch {JOB} #elsewhere", key="a")
    assert "channels you are in" in answer and fake_slack.top_level("C555") == []
    answer = await reply_to(fake_slack, runtime, f"unwatch {JOB} #elsewhere", key="b")
    assert "channels you are in" in answer
    answer = await reply_to(fake_slack, runtime, f"watch {JOB}", key="c", channel_id="D0DM1")
    assert "Watches live in channels" in answer
    assert await runtime.store.live_watches() == []


async def test_refresh_keeps_the_watch_line_and_an_ended_card_says_so(
    runtime, fake_slack, emulator
):
    """Refresh on a watched card keeps it a watched card; once the batch ends, the card says
    it is no longer watched."""
    await reply_to(fake_slack, runtime, f"watch {JOB}")
    (card,) = fake_slack.top_level(CHANNEL)
    value = card["blocks"][-1]["elements"][0]["value"]
    await click(runtime, fake_slack, "job_refresh", value, key="f")
    (post,) = await fake_slack.wait_for_posts("f")
    assert "Watched here" in json.dumps(post.body)
    emulator.set_status(JOB, "IN_PROGRESS")
    emulator.set_status(JOB, "COMPLETED")
    await runtime.deps.watcher.poll(JOB, None)
    updated = fake_slack.calls_to("chat.update")[-1].args
    assert "No longer watched" in json.dumps(updated["blocks"])


async def test_concurrent_watch_and_poll_post_one_card(runtime, fake_slack, emulator):
    """A watch command racing a poll of the same job still makes exactly one card."""
    fake_slack.latency = 0.2
    await asyncio.gather(
        reply_to(fake_slack, runtime, f"watch {JOB}", key="a"),
        runtime.deps.watcher.poll(JOB, None),
        reply_to(fake_slack, runtime, f"watch {JOB}", key="b"),
    )
    await runtime.deps.watcher.poll(JOB, None)
    assert len(fake_slack.top_level(CHANNEL)) == 1


async def test_unwatch_during_a_poll_posts_nothing_after_the_note(
    runtime, fake_slack, emulator, monkeypatch
):
    """An unwatch that lands while a poll waits for the API: no reply follows the note."""
    await reply_to(fake_slack, runtime, f"watch {JOB}")
    emulator.set_status(JOB, "IN_PROGRESS")
    waiting, answer = hold_poll_reads(runtime, monkeypatch)
    poll = asyncio.create_task(runtime.deps.watcher.poll(JOB, None))
    await waiting.wait()  # the poll waits for the API
    await reply_to(fake_slack, runtime, f"unwatch {JOB}", key="u")
    assert not poll.done()
    answer.set()
    await poll
    assert "turned this watch off" in thread(fake_slack)[-1]["text"]
    assert len(thread(fake_slack)) == 2  # the card and the note: no transition reply


@pytest.mark.slow
async def test_many_watches_keep_to_the_watchers_share(runtime, fake_slack, emulator, monkeypatch):
    """30 due polls at IOT_QPS=10 with half for watchers: at most 5 calls in any second,
    a person's query goes ahead of the polls still queued, and the interval stretches to
    what fits. (How long the person waits is the benchmark's: bench/watchers.py.)"""
    import time as clock

    emulator.auto_jobs = True
    store, watcher = runtime.store, runtime.deps.watcher
    limiter = runtime.iot.limiter
    person = "PersonJob0000000000000001"
    now = clock.time()
    for i in range(30):
        watch, _ = await store.add_watch(
            job_id=f"ManyJob{i:018d}",
            instance_id=None,
            channel_id=CHANNEL,
            created_by="U123",
            created_by_name="alice",
            told_status="IN_PROGRESS",
            only=frozenset(),
            quiet=False,
            now=now,
            expires_at=now + 3600,
        )
        await store.set_watch(watch.id, card_ts=f"1700000000.{i:06d}")

    def polls() -> list:
        return [c for c in emulator.calls if c.params.get("JobId") != person]

    # Who asks the limiter for a place, who is still waiting, and in what order it lets
    # them go.
    asked: dict[int, Priority] = {}
    waiting: set[int] = set()
    let_go: list[int] = []
    acquire = limiter.acquire

    async def tracked(priority: Priority = Priority.PERSON):
        me = len(asked)
        asked[me] = priority
        waiting.add(me)
        try:
            slot = await acquire(priority)
        finally:
            waiting.discard(me)
        let_go.append(me)
        return slot

    monkeypatch.setattr(limiter, "acquire", tracked)
    runtime.start()
    # The watchers' share of the window is taken and more polls wait behind it.
    await wait_until(
        lambda: limiter.in_window(Priority.BACKGROUND) == limiter.background_limit and bool(waiting)
    )
    queued = set(waiting)
    await runtime.deps.service.get_job(person, fresh=True)
    (mine,) = [i for i, priority in asked.items() if priority == Priority.PERSON]
    # The person went ahead of every poll that was queued when they asked.
    assert queued and not queued & set(let_go[: let_go.index(mine)])
    await wait_until(lambda: len(polls()) >= 12, timeout=10)  # into a third window
    await watcher.stop()
    times = sorted(c.at for c in polls())
    busiest = max(sum(1 for t in times if s <= t < s + 1.0) for s in times)
    assert busiest <= 5
    assert watcher.interval() == pytest.approx(30 / (5 * 0.8))


async def test_a_card_slack_accepted_before_a_crash_is_found_not_reposted(
    runtime, fake_slack, emulator, monkeypatch
):
    """Dying between Slack accepting the card and recording its ts: the next poll finds the
    card by its metadata in the channel and keeps using it."""
    store = runtime.store
    real_finish = store.finish_post

    async def crash(*args, **kwargs):
        raise RuntimeError("killed before the commit")

    monkeypatch.setattr(store, "finish_post", crash)
    await command(runtime, fake_slack, f"watch {JOB}")
    await fake_slack.wait_for_posts("r1")  # the error funnel's answer
    assert len(fake_slack.top_level(CHANNEL)) == 1
    monkeypatch.setattr(store, "finish_post", real_finish)
    emulator.set_status(JOB, "IN_PROGRESS")
    await runtime.deps.watcher.poll(JOB, None)
    assert len(fake_slack.top_level(CHANNEL)) == 1
    assert "Scheduled → In progress" in thread(fake_slack)[-1]["text"]


async def test_stopping_lets_a_poll_under_way_finish_its_posts(
    runtime, fake_slack, emulator, monkeypatch
):
    """On shutdown (SIGTERM), a poll already waiting for the API still posts its reply."""
    await reply_to(fake_slack, runtime, f"watch {JOB}")
    emulator.set_status(JOB, "IN_PROGRESS")
    waiting, answer = hold_poll_reads(runtime, monkeypatch)
    watcher = runtime.deps.watcher
    await runtime.store.record_poll(JOB, None, next_poll_at=0.0, now=0.0, status="PLANNED")
    (task,) = await watcher.tick()
    await waiting.wait()  # the poll has started and waits for the API
    assert not task.done()
    answer.set()  # the API answers while the watcher stops: stop() runs up to its wait
    await watcher.stop()
    assert task.done() and "Scheduled → In progress" in thread(fake_slack)[-1]["text"]
