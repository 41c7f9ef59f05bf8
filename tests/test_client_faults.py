"""IotClient against answers the emulator never gives: a real aiohttp server on 127.0.0.1
sends each scripted answer (garbage gzip, JSON too deep, out-of-range numbers, a slow
drip, an error quoting the signed URL, odd x-acs-retry-after values)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from tenacity import AsyncRetrying, RetryCallState

from bot.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_SECURITY_TOKEN
from bot.iot.client import IotClient, RetryPolicy, _WaitRetryAfterOrBackoff
from bot.iot.credentials import Credential, StaticCredentials
from bot.iot.errors import IotBadResponse, IotError, IotThrottled, IotTransportError
from bot.iot.http import IotHttp
from bot.iot.quota import SlidingWindowLimiter
from tests.helpers import CREDENTIAL

JOB = "HvKuVgAb3lGQ7Z5Yuf0K000000"
HEADER_RID = "HEADER-RID-0001"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FaultServer:
    """Answers call N with ``script[N]`` (the last one again once the script runs out)."""

    def __init__(self) -> None:
        self.script: list[Handler] = []
        self.calls: list[web.Request] = []
        self.stopping = asyncio.Event()
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self.stopping.set()
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.calls.append(request)
        handler = self.script[min(len(self.calls), len(self.script)) - 1]
        return await handler(request)


@pytest.fixture
async def server():
    srv = FaultServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def client_for(server):
    opened: list[IotHttp] = []

    def make(
        retry: RetryPolicy | None = None,
        *,
        credential: Credential = CREDENTIAL,
        signature: str = "v3",
    ) -> IotClient:
        http = IotHttp(5.0, server.url)
        opened.append(http)
        return IotClient(
            http,
            StaticCredentials(credential),
            endpoint=server.url,
            limiter=SlidingWindowLimiter(10),
            signature=signature,
            retry=retry or RetryPolicy(attempts=1),
        )

    yield make
    for http in opened:
        await http.aclose()


def raw(body: bytes | str, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(
            status=status,
            body=data,
            headers={
                "Content-Type": "application/json",
                "x-acs-request-id": HEADER_RID,
                **(headers or {}),
            },
        )

    return handler


def job_body(**extra: Any) -> str:
    return json.dumps({"RequestId": "BODY-RID", "Success": True, "Data": {"JobId": JOB}, **extra})


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- 1. answers that are not the API's ------------------------------------------------------

UNREADABLE = {
    "recursion": (
        '{"RequestId": "BODY-RID", "Success": true, "Data": ' + nested(100_000) + "}",
        {},
        "nested too deep",
    ),
    "deep_but_parsable": (
        '{"RequestId": "BODY-RID", "Success": true, "Data": {"Tags": ' + nested(500) + "}}",
        {},
        "nested deeper than",
    ),
    "gzip_garbage": (b"this is not gzip at all", {"Content-Encoding": "gzip"}, "does not decode"),
    "infinity": ('{"RequestId": "BODY-RID", "Success": true, "Data": {"X": 1e999}}', {}, "1e999"),
    "nan_literal": ('{"RequestId": "BODY-RID", "Success": true, "Data": NaN}', {}, "NaN"),
    "charset_that_does_not_decode": (
        b"\xff<html>oops</html>",
        {"Content-Type": "text/html; charset=utf-16"},
        "not JSON",
    ),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
async def test_an_unreadable_answer_is_a_bad_response(server, client_for, case) -> None:
    """JSON too deep, a body that does not decode, numbers beyond a double, a charset that
    does not decode: IotBadResponse with its Code, what went wrong and the header's
    RequestId (the body's could not be read), never an unexpected exception."""
    body, headers, words = UNREADABLE[case]
    server.script = [raw(body, headers=headers)]
    with pytest.raises(IotBadResponse) as info:
        await client_for().query_ota_job(JOB)
    error = info.value
    assert error.code == "InvalidResponse" and error.http_status == 200
    assert words in error.message and error.request_id == HEADER_RID


@pytest.mark.parametrize("total", ["1e999", "-1e999", "NaN", '"many"', "-3", "2.5", "true"])
async def test_a_total_that_is_not_a_count_is_a_bad_response(server, client_for, total) -> None:
    """ListOTATaskByJob's Total must be a whole count: inf (int() overflows), NaN, text,
    negative or fractional is IotBadResponse, never a made-up 0 or an OverflowError."""
    body = '{"RequestId": "BODY-RID", "Success": true, "Total": ' + total + ', "Data": {}}'
    server.script = [raw(body)]
    with pytest.raises(IotBadResponse) as info:
        await client_for().list_tasks(JOB, status="FAILED", size=1)
    assert info.value.request_id in {"BODY-RID", HEADER_RID}


@pytest.mark.parametrize(("total", "expected"), [("12", 12), ('"12"', 12), ("12.0", 12)])
async def test_a_readable_total_is_read(server, client_for, total, expected) -> None:
    body = '{"RequestId": "BODY-RID", "Success": true, "Total": ' + total + ', "Data": {}}'
    server.script = [raw(body)]
    page = await client_for().list_tasks(JOB, status="FAILED", size=1)
    assert page.total == expected and page.request_id == "BODY-RID"


async def test_a_request_id_that_is_not_text_falls_back_to_the_header(server, client_for):
    """A RequestId of another type would break the typed result: the header's is used."""
    server.script = [raw(job_body(RequestId=12345))]
    result = await client_for().query_ota_job(JOB)
    assert result.job.job_id == JOB and result.request_id == HEADER_RID


async def test_a_bad_response_to_a_write_may_have_run(server, client_for) -> None:
    """The gateway answered a cancel with garbage: the cancel may have been carried out,
    so it is not retried and the error says so."""
    server.script = [raw(b"\x1f\x8b garbage", headers={"Content-Encoding": "gzip"})]
    client = client_for(RetryPolicy(attempts=3, backoff_seconds=0.01))
    with pytest.raises(IotBadResponse) as info:
        await client.cancel_tasks(JOB, frozenset({"queued"}))
    assert info.value.may_have_run is True
    assert len(server.calls) == 1


# --- 2. a slow drip is timed out ------------------------------------------------------------


def drip(byte_every: float = 0.05, bytes_before_body: int = 100) -> Handler:
    """Headers at once, then one byte per ``byte_every`` (each read is quick, so httpx's
    read timeout never fires), the JSON only after ``bytes_before_body`` of them."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "x-acs-request-id": HEADER_RID}
        )
        await response.prepare(request)
        try:
            for _ in range(bytes_before_body):
                await response.write(b" ")
                await asyncio.sleep(byte_every)
            await response.write(job_body().encode())
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client gave up: the point of the test
        return response

    return handler


async def test_a_slow_drip_answer_is_timed_out(server, client_for) -> None:
    """A body trickling in byte by byte never trips httpx's per-read timeout; the
    attempt's own deadline ends it as the usual Timeout, and each retry gets one too."""
    server.script = [drip()]
    client = client_for(RetryPolicy(attempts=2, attempt_seconds=0.3, backoff_seconds=0.01))
    with pytest.raises(IotTransportError) as info:
        await client.query_ota_job(JOB)
    error = info.value
    assert error.code == "Timeout" and "within 0.3 s" in error.message
    assert error.retryable and error.may_have_run
    assert len(server.calls) == 2


async def test_the_total_budget_bounds_an_attempt_too(server, client_for) -> None:
    """An attempt deadline longer than the whole retry budget is cut to the budget."""
    server.script = [drip()]
    client = client_for(RetryPolicy(attempts=5, total_seconds=0.3, attempt_seconds=60))
    with pytest.raises(IotTransportError) as info:
        await client.query_ota_job(JOB)
    assert info.value.code == "Timeout" and "within 0.3 s" in info.value.message
    assert len(server.calls) == 1  # no budget left for a retry


async def test_every_caller_on_a_dripping_gateway_is_released(server, client_for) -> None:
    """Several callers at once on a dripping gateway all get their error."""
    server.script = [drip()]
    client = client_for(RetryPolicy(attempts=1, attempt_seconds=0.3))
    results = await asyncio.gather(
        *(client.query_ota_job(JOB) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, IotTransportError) and r.code == "Timeout" for r in results)


# --- 3. secrets quoted back in an error -------------------------------------------------------

TOKEN = "CAIS9gJ1q6Ft5B2yfSjIr5bSEsKbrtEUxt1tAIttSecret"
SIGNATURE = "abc%3D%2Fdef"


async def test_a_quoted_token_and_signature_are_redacted(server, client_for) -> None:
    """A gateway error quoting the signed query string shows neither the STS token nor the
    signature, in the message, the code, str() or the exception's args."""
    quoted = (
        f"Request rejected: POST /?AccessKeyId=LTAIquoted&Action=QueryOTAJob"
        f"&SecurityToken={TOKEN}&Signature={SIGNATURE}&SignatureMethod=HMAC-SHA1"
    )
    body = {
        "RequestId": "BODY-RID",
        "Code": f"Forbidden.Proxy SecurityToken={TOKEN}",
        "Message": quoted,
    }
    server.script = [raw(json.dumps(body), status=403)]
    with pytest.raises(IotError) as info:
        await client_for().query_ota_job(JOB)
    error = info.value
    for text in (str(error), error.message, error.code, repr(error.args)):
        assert TOKEN not in text and "abc" not in text and "LTAIquoted" not in text
    assert "SecurityToken=[redacted]" in error.message and "Signature=[redacted]" in error.message
    assert "SignatureMethod=HMAC-SHA1" in error.message  # only the secrets go
    assert error.request_id == "BODY-RID"


async def test_a_v2_request_echoed_by_a_proxy_leaks_nothing(server, client_for, caplog) -> None:
    """The real V2 URL (SecurityToken and Signature in the query) echoed by a failing
    proxy, retried: neither the error nor the retry's log line carries them."""

    async def echo(request: web.Request) -> web.StreamResponse:
        url = f"POST /?{request.rel_url.raw_query_string}"
        body = {"Code": "ServiceUnavailable", "Message": f"upstream failed: {url}"}
        return web.json_response(body, status=503)

    server.script = [echo]
    sts = Credential(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_SECURITY_TOKEN)
    retry = RetryPolicy(attempts=2, backoff_seconds=0.01)
    client = client_for(retry, credential=sts, signature="v2")
    with caplog.at_level(logging.DEBUG), pytest.raises(IotError) as info:
        await client.query_ota_job(JOB)
    sent = server.calls[-1].rel_url
    assert DEMO_SECURITY_TOKEN in sent.raw_query_string  # the proxy did see it
    signatures = {sent.query["Signature"], raw_param(sent.raw_query_string, "Signature")}
    assert len(server.calls) == 2
    for text in (str(info.value), caplog.text):
        assert DEMO_SECURITY_TOKEN not in text
        assert not any(s in text for s in signatures)
    assert "SecurityToken=[redacted]" in info.value.message


def raw_param(query: str, name: str) -> str:
    return next(p.split("=", 1)[1] for p in query.split("&") if p.startswith(f"{name}="))


# --- 4. x-acs-retry-after that is no number of seconds -------------------------------------


def throttled(retry_after: str) -> Handler:
    body = {"RequestId": "BODY-RID", "Code": "Throttling.User", "Message": "Request was denied."}
    return raw(json.dumps(body), status=400, headers={"x-acs-retry-after": retry_after})


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-inf", "Infinity", "1e400", "-1"])
async def test_a_non_finite_or_negative_retry_after_is_ignored(server, client_for, value) -> None:
    """NaN, infinite or negative is treated as no hint, never a sleep of that length."""
    server.script = [throttled(value)]
    with pytest.raises(IotThrottled) as info:
        await client_for().query_ota_job(JOB)
    assert info.value.retry_after is None


async def test_a_usable_retry_after_is_kept(server, client_for) -> None:
    server.script = [throttled("250")]
    with pytest.raises(IotThrottled) as info:
        await client_for().query_ota_job(JOB)
    assert info.value.retry_after == 0.25


@pytest.mark.parametrize("hint", [math.nan, math.inf, -1.0])
def test_the_wait_never_uses_a_non_finite_hint(hint) -> None:
    """Even an error that carries such a hint (built elsewhere) waits the normal backoff:
    asyncio.sleep(NaN) corrupts the event loop's timer heap and can stall it."""
    policy = RetryPolicy(backoff_seconds=0.01, max_backoff_seconds=0.02)
    state = RetryCallState(AsyncRetrying(), None, (), {})
    error = IotThrottled("Throttling.User", "denied", retry_after=hint)
    state.set_exception((IotThrottled, error, None))
    wait = _WaitRetryAfterOrBackoff(policy)(state)
    assert math.isfinite(wait) and 0 <= wait <= 0.02


def test_quoted_secrets_are_redacted_too() -> None:
    """JSON or header dumps quote keys and values; the values still go."""
    from bot.iot.errors import redact

    for text in (
        f'{{"SecurityToken":"{TOKEN}"}}',
        f"'x-acs-security-token': '{TOKEN}'",
        f"AccessKeySecret={TOKEN}",
    ):
        assert TOKEN not in redact(text), redact(text)


async def test_a_write_is_not_sent_without_time_for_its_answer(server, client_for) -> None:
    """Throttled, a cancel waits to try again; when too little of the budget is left to
    get an answer, it is not sent at all, and the error says it did not run (sending it
    would turn a clear "not canceled" into "may have been canceled")."""
    throttled = json.dumps({"RequestId": "R1", "Code": "Throttling.User", "Message": "slow down"})
    server.script = [raw(throttled, status=400, headers={"x-acs-retry-after": "1000"})]
    policy = RetryPolicy(attempts=3, total_seconds=3.5, backoff_seconds=0.01)
    with pytest.raises(IotError) as info:
        await client_for(policy).cancel_tasks(JOB, frozenset({"queued"}))
    assert len(server.calls) == 1
    assert info.value.may_have_run is False
