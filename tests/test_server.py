"""The entry points as a user runs them: app.py as a process, and the CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import httpx
from aiohttp import web

from bot.emulator import fixtures
from bot.server import build_web_app
from fakes import Inbound, as_http
from tests.helpers import (
    ROOT,
    SIGNING_SECRET,
    TEST_KEY_ID,
    TEST_KEY_SECRET,
    clean_env,
    free_port,
    start_runtime,
)

JOB = fixtures.EXAMPLE_JOB_ID_UNMASKED


async def test_http_mode_serves_slack_events_and_healthz(emulator, fake_slack) -> None:
    """Over real HTTP: /healthz answers, /slack/events takes a signed command."""
    runtime = await start_runtime(emulator, fake_slack)
    runner = web.AppRunner(build_web_app(runtime, mode="http"))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            health = await http.get("/healthz")
            assert health.json() == {"ok": True, "mode": "http", "demo": False, "push": "off"}
            request = Inbound(fake_slack, SIGNING_SECRET).command(JOB, key="r")
            body, headers = as_http(request)
            response = await http.post("/slack/events", content=body, headers=headers)
            assert response.status_code == 200
            (post,) = await fake_slack.wait_for_posts("r")
            assert post.body["blocks"][0]["text"]["text"] == "firmware2"
            forged = await http.post(
                "/slack/events", content=body, headers={**headers, "x-slack-signature": "v0=00"}
            )
            assert forged.status_code == 401
    finally:
        await runner.cleanup()
        await runtime.aclose()


def test_app_refuses_to_start_with_half_of_slacks_settings() -> None:
    """A Slack half set up stops app.py with one message naming what is missing (with no
    Slack setting at all it runs locally instead: test_local_surface.py)."""
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=clean_env(SLACK_BOT_TOKEN="xoxb-1"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET" in result.stderr and "xoxb-1" not in result.stderr


async def test_app_runs_in_demo_mode_and_stops_on_sigterm(fake_slack, tmp_path) -> None:
    """`python app.py` in demo mode serves /healthz and exits cleanly on SIGTERM."""
    port = free_port()
    env = clean_env(
        SLACK_BOT_TOKEN=fake_slack.bot_token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        OTAJOB_DEMO="1",
        DATABASE_URL=f"sqlite:///{tmp_path}/otajob.db",  # not the checkout's otajob.db
        PORT=str(port),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "app.py", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    health = await http.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "app did not start"
                    await asyncio.sleep(0.1)
        assert health.json()["demo"] is True
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def cli_env(emulator) -> dict[str, str]:
    return clean_env(
        IOT_ENDPOINT=emulator.base_url,
        ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_KEY_SECRET,
    )


async def test_cli_prints_the_job(emulator) -> None:
    """`python -m bot job <JobId>` prints the job, readable, from the signed API."""
    result = await asyncio.to_thread(run_cli, "job", JOB, env=cli_env(emulator))
    assert result.returncode == 0, result.stderr
    assert "In progress" in result.stdout and "1.0.0 -> 1.0.1" in result.stdout
    assert emulator.count("QueryOTAJob") == 1


async def test_cli_json_is_the_api_data(emulator) -> None:
    """--json prints the job's Data with the API's own field names."""
    result = await asyncio.to_thread(run_cli, "job", JOB, "--json", env=cli_env(emulator))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["DestVersion"] == "1.0.1"


async def test_cli_api_error_exits_non_zero(emulator) -> None:
    """An API error exits 1 and prints Code, message and RequestId, never the secret."""
    result = await asyncio.to_thread(
        run_cli, "job", "NoSuchJob00000000000000001", env=cli_env(emulator)
    )
    assert result.returncode == 1
    assert "Code: iot.ota.JobNotFound" in result.stderr and "RequestId: " in result.stderr
    assert TEST_KEY_SECRET not in result.stderr + result.stdout


def test_cli_bad_job_id_exits_2() -> None:
    """A malformed JobId is refused before any call, with what to type instead."""
    result = run_cli("job", "wahVIzGkCMuAUE2gDERM02****", env=clean_env())
    assert result.returncode == 2 and "masked examples" in result.stderr


async def test_a_warm_runtime_asks_who_its_token_is_once(emulator, fake_slack) -> None:
    """Before listening the server tells Bolt who the token is: a burst of 20 commands at
    a cold start costs one auth.test, not one each (Bolt asks until an answer is in)."""
    from tests.surfaces import command, handled

    runtime = await start_runtime(emulator, fake_slack)
    try:
        await runtime.warm()
        responses = await asyncio.gather(
            *(command(runtime, fake_slack, JOB, key=f"w{i}") for i in range(20))
        )
        assert all(r.status == 200 for r in responses)
        await handled()
        assert len(fake_slack.calls_to("auth.test")) == 1
    finally:
        await runtime.aclose()


async def test_shutdown_lets_acknowledged_answers_finish(emulator, fake_slack) -> None:
    """A command acknowledged just before SIGTERM still gets its card: closing the
    runtime waits for the answers under way before the clients close."""
    from tests.surfaces import command

    runtime = await start_runtime(emulator, fake_slack)
    emulator.latency = 0.5  # the read is still under way when the runtime closes
    try:
        response = await command(runtime, fake_slack, JOB, key="late")
        assert response.status == 200
    finally:
        await runtime.aclose()
    (card, *_) = fake_slack.posts_to("late")
    assert "firmware2" in json.dumps(card.body)
