"""Three app.py processes in HTTP mode on one PostgreSQL, against the emulator at
IOT_QPS=10, with Slack's requests spread round-robin over them as a load balancer would:
they behave as one app to Alibaba Cloud."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.emulator import fixtures
from fakes import Inbound, as_http
from tests.helpers import (
    POSTGRES_URL,
    SIGNING_SECRET,
    app_env,
    free_port,
    fresh_postgres,
    start_app,
    stop,
)

pytestmark = [pytest.mark.xdist_group("postgres"), pytest.mark.slow]
QPS = 10


def max_in_window(times: list[float], window: float = 1.0) -> int:
    ordered, best, start = sorted(times), 0, 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.fixture
async def replicas(emulator, fake_slack, tmp_path, postgres_turn):
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL here (.ci/run starts one when the machine has it)")
    emulator.qps = QPS
    url = await fresh_postgres(POSTGRES_URL)
    ports = [free_port() for _ in range(3)]
    processes = []
    try:
        for port in ports:
            env = app_env(emulator, fake_slack, tmp_path, "60", port)
            env |= {"DATABASE_URL": url, "IOT_QPS": str(QPS), "LOG_LEVEL": "WARNING"}
            processes.append(await start_app(env, port))
        yield ports
    finally:
        for process in processes:
            await stop(process)


async def send(fake_slack, ports: list[int], texts: list[str]) -> None:
    """Each command to the next replica in turn, all at once."""
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(i: int, text: str) -> None:
            request = Inbound(fake_slack, SIGNING_SECRET).command(text, key=f"r{i}")
            body, headers = as_http(request)
            url = f"http://127.0.0.1:{ports[i % len(ports)]}/slack/events"
            assert (await http.post(url, content=body, headers=headers)).status_code == 200

        await asyncio.gather(*(one(i, text) for i, text in enumerate(texts)))


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
