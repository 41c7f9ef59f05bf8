"""OtaService: identical concurrent reads coalesce; reads stay fresh briefly; errors don't."""

from __future__ import annotations

import asyncio

import pytest

from bot.emulator import fixtures
from bot.iot.errors import IotApiError
from bot.iot.service import CoalescingCache, OtaService
from tests.helpers import wait_until

JOB = fixtures.EXAMPLE_JOB_ID_UNMASKED


async def test_identical_concurrent_reads_make_one_call(make_client, emulator) -> None:
    """40 people asking for the same job at once cost one upstream call."""
    emulator.latency = 0.2
    service = OtaService(make_client(), cache_seconds=5)
    results = await asyncio.gather(*(service.get_job(JOB) for _ in range(40)))
    assert {r.job.job_id for r in results} == {JOB}
    assert emulator.count("QueryOTAJob") == 1


async def test_cache_expires() -> None:
    """Within its time to live a read is reused; from then on it is read again (the
    cache's clock is driven here, not waited for)."""
    now = [1000.0]
    cache: CoalescingCache[int] = CoalescingCache(5, clock=lambda: now[0])
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        return loads

    assert await cache.get(JOB, load) == 1
    now[0] += 4.9
    assert await cache.get(JOB, load) == 1
    now[0] += 0.1
    assert await cache.get(JOB, load) == 2
    assert await cache.get(JOB, load) == 2


async def test_the_service_keeps_reads_for_cache_seconds(make_client, emulator) -> None:
    """cache_seconds reaches the service's cache: 60 keeps a read, 0 keeps none."""
    kept = OtaService(make_client(), cache_seconds=60)
    first = await kept.get_job(JOB)
    assert (await kept.get_job(JOB)).request_id == first.request_id
    assert emulator.count("QueryOTAJob") == 1
    none = OtaService(make_client(), cache_seconds=0)
    assert (await none.get_job(JOB)).request_id != (await none.get_job(JOB)).request_id
    assert emulator.count("QueryOTAJob") == 3


async def test_fresh_skips_cache_but_joins_inflight(make_client, emulator) -> None:
    """Refresh bypasses the cache, yet joins a read that is already under way."""
    service = OtaService(make_client(), cache_seconds=60)
    await service.get_job(JOB)
    await service.get_job(JOB, fresh=True)
    assert emulator.count("QueryOTAJob") == 2
    emulator.latency = 0.2
    await asyncio.gather(service.get_job(JOB, fresh=True), service.get_job(JOB, fresh=True))
    assert emulator.count("QueryOTAJob") == 3


async def test_errors_are_not_cached(make_client, emulator) -> None:
    """A failed read is retried by the next caller instead of served from cache."""
    service = OtaService(make_client(), cache_seconds=60)
    emulator.fail_next("business")
    with pytest.raises(IotApiError):
        await service.get_job(JOB)
    assert (await service.get_job(JOB)).job.job_id == JOB


async def test_cancelled_caller_does_not_cancel_the_shared_read(make_client, emulator) -> None:
    """One caller giving up does not take the upstream call away from the others."""
    emulator.latency = 0.2
    service = OtaService(make_client(), cache_seconds=5)
    impatient = asyncio.create_task(service.get_job(JOB))
    patient = asyncio.create_task(service.get_job(JOB))
    await wait_until(lambda: emulator.count("QueryOTAJob") == 1)  # the shared read is out
    impatient.cancel()
    assert (await patient).job.job_id == JOB
    assert emulator.count("QueryOTAJob") == 1


async def test_instances_are_separate_keys(make_client, emulator) -> None:
    """The same JobId on two instances is two different reads; the default applies."""
    emulator.add_job(fixtures.make_job("SameJob000000000000000001"), instance_id="iot-a")
    service = OtaService(make_client(), default_instance_id="iot-a")
    assert (await service.get_job("SameJob000000000000000001")).job.job_id
    assert emulator.calls[-1].params["IotInstanceId"] == "iot-a"
