"""`/otajob watches all` and the Home tab with 2,000 watched channels: how long "the
channels you are in" takes, and what it costs in Slack calls under Slack's rate tiers.

The fake Slack answers every Web API call after FAKE_SLACK_LATENCY (a round trip to
Slack) and applies Slack's rate tiers. For comparison, the same question asked the way
earlier versions did, one conversations.members call per channel (8 in flight), with the
fake's rate limits off (on, Tier 4 would stop it after 100 calls a minute).

    python -m bench.membership
"""

from __future__ import annotations

import asyncio
import time

from bench.harness import SIGNING_SECRET, stack
from bot.db import Store
from bot.emulator import fixtures
from fakes import Inbound

CHANNELS = 2_000
MEMBER_OF = 300  # of the watched channels, the person is in this many
FAKE_SLACK_LATENCY = 0.05
USER = "U123"
JOB = "MembershipBench0000000001"


async def add_watches(store: Store) -> None:
    now = time.time()
    for n in range(CHANNELS):
        await store.add_watch(
            job_id=JOB,
            instance_id=None,
            channel_id=f"C{n:07d}",
            created_by=USER,
            created_by_name="alice",
            told_status="IN_PROGRESS",
            only=frozenset(),
            quiet=False,
            now=now,
            expires_at=now + 86_400,
        )


async def per_channel(client, channels: list[str]) -> float:
    """The earlier way: conversations.members for each channel, 8 at a time."""
    gate = asyncio.Semaphore(8)

    async def one(channel: str) -> bool:
        async with gate:
            page = await client.conversations_members(channel=channel, limit=1000)
            return USER in (page.get("members") or [])

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in channels))
    return time.perf_counter() - started


async def measure() -> dict[str, object]:
    async with stack(settings={"WATCH_POLL_SECONDS": "3600"}) as built:
        slack, runtime = built.slack, built.runtime
        built.emulator.add_job(fixtures.make_job(JOB))
        channels = [f"C{n:07d}" for n in range(CHANNELS)]
        for n, channel in enumerate(channels):
            members = (USER,) if n < MEMBER_OF else ("U0OTHER",)
            slack.add_channel(channel, f"team-{n}", members=members)
        await add_watches(runtime.store)
        slack.latency = FAKE_SLACK_LATENCY
        inbound = Inbound(slack, SIGNING_SECRET)

        started = time.perf_counter()
        await runtime.app.async_dispatch(inbound.command("watches all", key="all"))
        (answer,) = await slack.wait_for_posts("all", timeout=120)
        listing = time.perf_counter() - started
        reads = len(slack.calls_to("users.conversations"))

        started = time.perf_counter()
        await runtime.app.async_dispatch(inbound.home_opened(USER))
        await slack.wait_for_calls("views.publish", timeout=120)
        home = time.perf_counter() - started

        slack.rate_limits = False
        old_way = await per_channel(runtime.deps.client, channels)
        limited = [c for c in slack.calls if c.error == "ratelimited"]
        return {
            "listing_s": listing,
            "home_s": home,
            "reads": reads,
            "shown": "(300)" in str(answer.body),
            "old_way_s": old_way,
            "ratelimited": len(limited),
        }


def main() -> None:
    found = asyncio.run(measure())
    print(f"\n## Channels you are in: {CHANNELS:,} watched channels, member of {MEMBER_OF}")
    print(f"(fake Slack answers after {FAKE_SLACK_LATENCY * 1000:.0f} ms, Slack's rate tiers on)\n")
    print("| Measurement | Result |")
    print("| --- | --- |")
    print(f"| `/otajob watches all`, answer after | {found['listing_s'] * 1000:,.0f} ms |")
    print(f"| users.conversations calls for it | {found['reads']} |")
    print(f"| lists the 300 watches of the person's channels | {found['shown']} |")
    print(f"| Home tab opened right after, published after | {found['home_s'] * 1000:,.0f} ms |")
    print(f"| `ratelimited` answers | {found['ratelimited']} |")
    print(
        f"| earlier way: {CHANNELS:,} conversations.members calls, 8 in flight, "
        f"rate limits off | {found['old_way_s']:,.1f} s |"
    )
    print(f"| the same under Tier 4 (100 a minute) | at least {CHANNELS / 100:.0f} minutes |")


if __name__ == "__main__":
    main()
