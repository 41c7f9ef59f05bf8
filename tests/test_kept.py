"""What the Slack surfaces keep between requests, shared by replicas through leases in the
database: the Home tab's debounce and one re-upgrade of a batch at a time."""

from __future__ import annotations

import pytest

from bot.db import Store
from bot.slack.kept import Debounce, OneAtATime
from tests.helpers import wait_until


@pytest.fixture
async def store(tmp_path):
    opened = await Store.open(f"sqlite:///{tmp_path}/kept.db")
    yield opened
    await opened.close()


async def test_debounce_lets_a_key_go_once_per_period(store) -> None:
    debounce = Debounce(store, "home", 0.2)
    assert await debounce.may("U1") and not await debounce.may("U1")
    assert await debounce.may("U2")  # each person has their own period
    other_replica = Debounce(store, "home", 0.2)  # the same lease, seen from elsewhere
    assert not await other_replica.may("U2")

    async def again() -> bool:
        return await debounce.may("U1")

    await wait_until(again, timeout=5)  # the period ran out (the database's clock)


async def test_one_at_a_time_refuses_a_second_start_until_done(store) -> None:
    running, elsewhere = OneAtATime(store, "reupgrade", 600), OneAtATime(store, "reupgrade", 600)
    assert await running.start(("J1", None)) and not await elsewhere.start(("J1", None))
    assert await elsewhere.start(("J2", None))
    await running.done(("J1", None))
    assert await elsewhere.start(("J1", None))
