"""What the tests share that is not a fixture: the tests' own key and signing secret, the
app's settings and runtime as the tests build them, app.py run as a process (free port,
clean environment, start, stop), and waiting for something to happen.

Fixtures live in conftest.py and build on this module; test modules import from here,
from tests/surfaces.py (driving the app's Slack surfaces in process: requests into Bolt),
from fakes/ and from bot/, never from conftest.py or from one another. surfaces.py stays
its own module because it is one thing, the in-process Slack dispatch, used on its own by
most Slack tests; everything else shared lives here, so there is one place to look."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from bot.config import Settings, load_settings
from bot.emulator import IotEmulator
from bot.iot.credentials import Credential, StaticCredentials
from bot.runtime import Runtime, build_runtime
from fakes import FakeSlack

ROOT = Path(__file__).resolve().parent.parent

# A key of the tests' own, so a leak check can look for a secret nothing else prints.
TEST_KEY_ID = "LTAItestOtajobKey"
TEST_KEY_SECRET = "t3st-s3cret-must-never-appear"
CREDENTIAL = Credential(TEST_KEY_ID, TEST_KEY_SECRET)
SIGNING_SECRET = "test-signing-secret"


# --- the app in process -------------------------------------------------------------------


def app_settings(emulator: IotEmulator, fake: FakeSlack, **extra: str) -> Settings:
    return load_settings(
        {
            "DATABASE_URL": f"sqlite:///{tempfile.mkdtemp(prefix='otajob-test-')}/otajob.db",
            "SLACK_BOT_TOKEN": fake.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url,
            "IOT_ENDPOINT": emulator.base_url,
            **extra,
        }
    )


async def start_runtime(emulator: IotEmulator, fake_slack: FakeSlack, **settings: str) -> Runtime:
    """The runtime as app.py builds it, against the emulator and the fake Slack, with the
    tests' key; ``settings`` adds or overrides environment settings. The caller closes it
    (the ``started`` and ``runtime`` fixtures in conftest.py do)."""
    return await build_runtime(
        app_settings(emulator, fake_slack, **settings), credentials=StaticCredentials(CREDENTIAL)
    )


# Set by .ci/run when the machine's PostgreSQL could be started; the PostgreSQL variants
# of the store and lifecycle tests skip without it (the SQLite ones always run), except
# under CI, where a missing PostgreSQL fails them: replicas must be proven there.
POSTGRES_URL = os.environ.get("OTAJOB_TEST_POSTGRES_URL")


def need_postgres() -> str:
    """The test database's URL; without one, skip the test (fail it under CI=true)."""
    if POSTGRES_URL:
        return POSTGRES_URL
    why = "no PostgreSQL here (.ci/run starts one when the machine has it)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why}; under CI the PostgreSQL tests must run", pytrace=False)
    pytest.skip(why)


async def fresh_postgres(url: str) -> str:
    """Empty the test database, so each test starts from a schema of nothing. Every test
    that uses it is marked ``xdist_group("postgres")``: the processes of make test share
    the one database, and a group runs in one process, one test at a time."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.db import async_url

    engine = create_async_engine(async_url(url))
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return url


# --- app.py as a process ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IOT_", "ALIBABA_"))}
    keep["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    keep["OTAJOB_ENV_FILE"] = "/nonexistent/.env"  # a developer's own .env must not leak in
    return {**keep, **extra}


def app_env(emulator, fake_slack, tmp_path, poll_seconds: str, port: int) -> dict[str, str]:
    return clean_env(
        SLACK_BOT_TOKEN=fake_slack.bot_token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        IOT_ENDPOINT=emulator.base_url,
        ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_KEY_SECRET,
        DATABASE_URL=f"sqlite:///{tmp_path}/otajob.db",
        WATCH_POLL_SECONDS=poll_seconds,
        PORT=str(port),
    )


async def start_app(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "app.py", cwd=ROOT, env=env, stderr=asyncio.subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient() as http:
        while True:
            try:
                await http.get(f"http://127.0.0.1:{port}/healthz")
                return process
            except httpx.TransportError:
                assert time.monotonic() < deadline, "app did not start"
                await asyncio.sleep(0.1)


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


# --- waiting ------------------------------------------------------------------------------


async def wait_until(check: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    """Return as soon as ``check()`` holds (looked at every 10 ms); fail after ``timeout``.
    ``check`` may be a coroutine function (a look at the database, say).

    To show that something did *not* happen, wait for what proves the work is done (the
    request handled: tests/surfaces.py ``handled()``; the poll that would have posted
    finished; the state that ends the work) and look then: never after a pause."""
    deadline = time.monotonic() + timeout
    while True:
        holds = check()
        if inspect.isawaitable(holds):
            holds = await holds
        if holds:
            return
        assert time.monotonic() < deadline, f"timed out after {timeout} s"
        await asyncio.sleep(0.01)


def texts_in(node, *, mrkdwn_only: bool = False) -> list[str]:
    """Every ``text`` string in a Block Kit structure, in order (with ``mrkdwn_only``,
    those of mrkdwn objects: what Slack parses for mentions and links)."""
    found: list[str] = []

    def walk(value) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str) and (
                not mrkdwn_only or value.get("type") == "mrkdwn"
            ):
                found.append(value["text"])
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(node)
    return found
