"""Shared fixtures: the IoT emulator and the fake Slack run as real HTTP servers on
127.0.0.1; tests never reach Alibaba Cloud or Slack. What tests share besides fixtures
is in tests/helpers.py."""

from __future__ import annotations

import fcntl
import os
import tempfile

# Alibaba's default credential chain may ask the ECS metadata service; never from tests.
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

import pytest

from bot.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, IotEmulator
from bot.iot.client import IotClient, RetryPolicy
from bot.iot.credentials import Credential, StaticCredentials
from bot.iot.http import IotHttp
from bot.iot.quota import SlidingWindowLimiter
from fakes import FakeSlack
from tests.helpers import CREDENTIAL, TEST_KEY_ID, TEST_KEY_SECRET, start_runtime
from tests.surfaces import finish_requests


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (a stable sort: otherwise in file order). Run on two processes
    (make test), the long ones then start early instead of leaving one process running
    alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def postgres_turn():
    """Hold the one PostgreSQL test database for this test: its tests empty it, so two
    processes (pytest-xdist) must never use it at once, whatever the scheduler does."""
    path = os.path.join(tempfile.gettempdir(), "otajob-test-postgres.lock")
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
async def emulator():
    emu = IotEmulator(
        credentials={DEMO_ACCESS_KEY_ID: DEMO_ACCESS_KEY_SECRET, TEST_KEY_ID: TEST_KEY_SECRET}
    )
    await emu.start()
    yield emu
    await emu.stop()


# What Slack answers when a message, modal or Home tab breaks its limits (the fake applies
# them: fakes/block_kit.py). Any test that makes the app send such a thing fails,
# unless it is marked ``slack_refusals_expected`` (the fake's own tests).
LIMIT_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long"})


@pytest.fixture
async def fake_slack(request):
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()
    if request.node.get_closest_marker("slack_refusals_expected"):
        return
    refused = [
        f"{getattr(item, 'method', 'response_url')}: {item.error}"
        for item in [*fake.calls, *fake.posts]
        if item.error in LIMIT_ERRORS
        or (
            item.error == "invalid_arguments"
            and str(getattr(item, "method", "")).startswith("views.")
        )
    ]
    assert not refused, f"Slack would have refused what the app sent: {refused}"


@pytest.fixture
async def make_client(emulator):
    """Build IotClients against the emulator; closes their HTTP clients afterwards."""
    opened: list[IotHttp] = []

    def make(
        *,
        signature: str = "v3",
        qps: int = 10,
        retry: RetryPolicy | None = None,
        timeout: float = 5.0,
        credential: Credential = CREDENTIAL,
    ) -> IotClient:
        http = IotHttp(timeout, emulator.base_url)
        opened.append(http)
        return IotClient(
            http,
            StaticCredentials(credential),
            endpoint=emulator.base_url,
            limiter=SlidingWindowLimiter(qps),
            signature=signature,
            retry=retry or RetryPolicy(backoff_seconds=0.01, max_backoff_seconds=0.05),
        )

    yield make
    for http in opened:
        await http.aclose()


@pytest.fixture
async def started(emulator, fake_slack):
    """Start runtimes with some settings (``await started(OTAJOB_ACTIONS="cancel")``);
    each is closed after the test."""
    opened = []

    async def start(**settings: str):
        built = await start_runtime(emulator, fake_slack, **settings)
        opened.append(built)
        return built

    yield start
    await finish_requests()  # the app's answers still under way, before anything closes
    for built in opened:
        await built.aclose()


@pytest.fixture
async def runtime(started):
    """A runtime with the tests' default settings, closed after the test; a test module
    that needs jobs, people or settings first overrides this, built on ``started``."""
    return await started()
