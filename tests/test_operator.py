"""What an operator runs the app by: /metrics counts what happened, /readyz says whether
the app can serve (and why not), and LOG_FORMAT=json writes one JSON object a line.
Over real HTTP to the app's own aiohttp server, against the emulator and the fake Slack."""

from __future__ import annotations

import json
import logging

import httpx
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.emulator import fixtures
from bot.logs import JsonFormatter
from bot.server import build_web_app
from fakes import Inbound, as_http
from tests.helpers import SIGNING_SECRET, free_port, start_runtime
from tests.surfaces import handled

JOB = fixtures.EXAMPLE_JOB_ID_UNMASKED


class Served:
    """The runtime's web app on a real port, with an HTTP client for it."""

    def __init__(self, runtime) -> None:
        self.runtime = runtime
        self.port = free_port()
        self.runner = web.AppRunner(build_web_app(runtime, mode="http"))

    async def __aenter__(self) -> Served:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}")
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.http.aclose()
        await self.runner.cleanup()

    async def command(self, fake_slack, text: str, key: str) -> None:
        body, headers = as_http(Inbound(fake_slack, SIGNING_SECRET).command(text, key=key))
        assert (await self.http.post("/slack/events", content=body, headers=headers)).is_success

    async def metrics(self) -> dict[tuple[str, tuple], float]:
        answer = await self.http.get("/metrics")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/")
        samples = {}
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_what_happened(emulator, fake_slack) -> None:
    """IoT calls by action and outcome (throttled ones too), job reads by how they were
    answered, Slack calls by method and outcome, acknowledgements, watches, push."""
    runtime = await start_runtime(emulator, fake_slack)
    try:
        async with Served(runtime) as served:
            fake_slack.fail_next("users.info", "missing_scope")
            emulator.fail_next("throttle")  # the first QueryOTAJob is throttled, then retried
            await served.command(fake_slack, JOB, key="a")
            await fake_slack.wait_for_posts("a", 2)
            await served.command(fake_slack, JOB, key="b")  # the same job: from the cache
            await fake_slack.wait_for_posts("b", 1)
            await served.command(fake_slack, f"watch {JOB}", key="w")
            await fake_slack.wait_for_posts("w")
            await handled()
            seen = await served.metrics()

        assert value(seen, "otajob_iot_calls_total", action="QueryOTAJob", outcome="throttled") == 1
        assert value(seen, "otajob_iot_calls_total", action="QueryOTAJob", outcome="ok") >= 2
        assert value(seen, "otajob_iot_calls_total", action="ListOTATaskByJob", outcome="ok") >= 7
        assert value(seen, "otajob_job_reads_total", how="call") >= 2
        assert value(seen, "otajob_job_reads_total", how="cache_hit") >= 1
        assert value(seen, "otajob_quota_wait_seconds_count", priority="person") >= 9
        assert value(seen, "otajob_slack_calls_total", method="users.info", outcome="missing_scope")
        assert value(seen, "otajob_slack_calls_total", method="chat.postMessage", outcome="ok") >= 1
        assert value(seen, "otajob_ack_seconds_count", kind="command") == 3
        assert value(seen, "otajob_watches", state="active") == 1
        assert value(seen, "otajob_push_state", state="off") == 1
        assert ("otajob_poll_lag_seconds", ()) in seen
    finally:
        await runtime.aclose()


async def test_readyz_says_what_is_not_ready(emulator, fake_slack) -> None:
    """/readyz is 200 when the database answers, is migrated and Slack takes the token;
    503 naming the check that failed (here a revoked token), never a secret."""
    runtime = await start_runtime(emulator, fake_slack)
    try:
        async with Served(runtime) as served:
            ready = await served.http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {
                "ready": True,
                "checks": {"database": "ok", "migrations": "ok", "slack_token": "ok"},
            }
            assert (await served.http.get("/healthz")).status_code == 200

            fake_slack.tokens.clear()  # the token was revoked
            runtime.token_checked_until = 0.0  # past the minute a yes is remembered
            refused = await served.http.get("/readyz")
            assert refused.status_code == 503
            assert refused.json()["checks"]["slack_token"] == "refused (invalid_auth)"
            assert fake_slack.bot_token not in refused.text
            assert (await served.http.get("/healthz")).status_code == 200  # still alive
    finally:
        await runtime.aclose()


def test_json_logs_are_one_object_a_line_with_what_the_line_names() -> None:
    """LOG_FORMAT=json: time, level, logger, message, replica, and the error id, request
    kind or job id a line carries; a traceback stays inside its line."""
    formatter = JsonFormatter("otajob-host-12")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "otajob.errors", logging.ERROR, __file__, 1, "error_id=%s", ("abc",), sys.exc_info()
        )
    record.error_id, record.request_kind = "abc", "command"
    line = formatter.format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "error_id=abc" and parsed["error_id"] == "abc"
    assert parsed["request_kind"] == "command" and parsed["replica"] == "otajob-host-12"
    assert parsed["level"] == "ERROR" and "ValueError: boom" in parsed["exception"]
    assert "job_id" not in parsed
