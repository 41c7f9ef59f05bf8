"""SIGKILL and restart in the middle of a lifecycle: no watch lost, no post twice, the
transition that happened while the app was down posted once when it is back.

"Nothing more was posted" is checked once the app has ended the watch in its database:
the final reply and the card's last edit come before that, and an ended watch is polled
no more, so nothing else can come of it."""

from __future__ import annotations

import random
import signal

import httpx
import pytest

from bot.db import Store
from bot.emulator import fixtures
from fakes import Inbound, as_http
from tests.helpers import SIGNING_SECRET, app_env, free_port, start_app, stop, wait_until

pytestmark = pytest.mark.slow

JOB = "RestartJob000000000000001"
CHANNEL = "C123"


async def send_watch(fake_slack, port: int) -> None:
    """`/otajob watch` over HTTP to the running app; returns once its answer arrived."""
    body, headers = as_http(Inbound(fake_slack, SIGNING_SECRET).command(f"watch {JOB}", key="w"))
    async with httpx.AsyncClient() as http:
        await http.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers)
    await fake_slack.wait_for_posts("w")


async def watch_ended(database_url: str, timeout: float = 15) -> None:
    """Return once the app (another process) has ended the watch of JOB."""
    store = await Store.open(database_url)
    try:

        async def ended() -> bool:
            return not await store.live_watches(job_id=JOB)

        await wait_until(ended, timeout)
    finally:
        await store.close()


async def polled(emulator, times: int, timeout: float = 15) -> None:
    """Return once the app has read JOB ``times`` more times."""
    target = emulator.count("QueryOTAJob") + times
    await wait_until(lambda: emulator.count("QueryOTAJob") >= target, timeout)


async def test_sigkill_and_restart(emulator, fake_slack, tmp_path) -> None:
    """Killed after the first transition, the app comes back, posts the one it missed once."""
    emulator.add_job(fixtures.make_job(JOB, JobStatus="PLANNED", UtcStartTime=None))
    port = free_port()
    env = app_env(emulator, fake_slack, tmp_path, "1", port)
    process = await start_app(env, port)
    try:
        await send_watch(fake_slack, port)
        (card,) = fake_slack.top_level(CHANNEL)

        def replies() -> list[dict]:
            return fake_slack.thread(CHANNEL, card["ts"])[1:]

        emulator.set_status(JOB, "IN_PROGRESS")
        await wait_until(lambda: len(replies()) == 1, timeout=15)
        process.send_signal(signal.SIGKILL)
        await process.wait()

        emulator.set_status(JOB, "COMPLETED")  # while the app is down
        process = await start_app(env, port)
        await wait_until(lambda: len(replies()) == 2, timeout=15)
        await watch_ended(env["DATABASE_URL"])  # nothing more can come of it
        texts = [m["text"] for m in replies()]
        assert len(texts) == 2, texts
        assert "Scheduled → In progress" in texts[0] and "In progress → Completed" in texts[1]
        assert replies()[1].get("reply_broadcast") is True
        assert len(fake_slack.top_level(CHANNEL)) == 1
    finally:
        await stop(process)


async def test_kills_at_arbitrary_moments(emulator, fake_slack, tmp_path) -> None:
    """SIGKILL at several arbitrary moments through a lifecycle: exactly one card and one
    reply per transition in the end."""
    rng = random.Random(7)
    emulator.add_job(fixtures.make_job(JOB, JobStatus="PLANNED", UtcStartTime=None))
    port = free_port()
    env = app_env(emulator, fake_slack, tmp_path, "0.3", port)
    process = await start_app(env, port)
    try:
        await send_watch(fake_slack, port)
        for status in ("IN_PROGRESS", "COMPLETED"):
            emulator.set_status(JOB, status)
            await polled(emulator, rng.randint(0, 2))  # killed after 0 to 2 more reads
            process.send_signal(signal.SIGKILL)
            await process.wait()
            process = await start_app(env, port)
        (card,) = fake_slack.top_level(CHANNEL)

        def replies() -> list[dict]:
            return fake_slack.thread(CHANNEL, card["ts"])[1:]

        await wait_until(lambda: len(replies()) >= 2, timeout=15)
        await watch_ended(env["DATABASE_URL"])  # nothing more can come of it
        texts = [m["text"] for m in replies()]
        assert len(texts) == 2, texts
        assert "In progress → Completed" in texts[-1]
    finally:
        await stop(process)
