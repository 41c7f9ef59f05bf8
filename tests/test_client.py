"""IotClient against the signature-checking emulator over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_SECURITY_TOKEN, fixtures
from bot.iot.client import RetryPolicy
from bot.iot.credentials import Credential
from bot.iot.errors import (
    IotApiError,
    IotBadResponse,
    IotError,
    IotThrottled,
    IotTransportError,
    IotUnavailable,
    error_kind,
)
from tests.helpers import TEST_KEY_ID

JOB = fixtures.EXAMPLE_JOB_ID_UNMASKED


@pytest.mark.parametrize("signature", ["v3", "v2"])
async def test_query_ota_job_both_signatures(make_client, emulator, signature) -> None:
    """A signed QueryOTAJob returns the typed job and RequestId, with V3 and with V2."""
    result = await make_client(signature=signature).query_ota_job(JOB)
    assert result.job.job_id == JOB and result.job.dest_version == "1.0.1"
    assert result.request_id and result.raw["Name"] == "firmware2"
    assert emulator.calls[-1].signature_version == signature and emulator.calls[-1].code is None


async def test_sts_token_is_sent_and_accepted(make_client, emulator) -> None:
    """Temporary (STS) credentials sign with their security token."""
    sts = Credential(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_SECURITY_TOKEN)
    assert (await make_client(credential=sts).query_ota_job(JOB)).job.job_id == JOB
    forged = Credential(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, "not-the-token")
    with pytest.raises(IotApiError) as info:
        await make_client(credential=forged).query_ota_job(JOB)
    assert info.value.code.startswith("InvalidSecurityToken")


async def test_v2_sts_token_never_reaches_the_logs(make_client, caplog) -> None:
    """With V2 the token travels in the URL; no log line, even at DEBUG, carries it."""
    sts = Credential(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_SECURITY_TOKEN)
    with caplog.at_level(logging.DEBUG):
        await make_client(signature="v2", credential=sts).query_ota_job(JOB)
    assert caplog.records  # something was logged, and none of it is the token
    assert DEMO_SECURITY_TOKEN not in caplog.text and DEMO_ACCESS_KEY_SECRET not in caplog.text


async def test_instance_id_is_sent(make_client, emulator) -> None:
    """IotInstanceId goes with the call; a job on that instance is found there."""
    emulator.add_job(fixtures.make_job("InstJob0000000000000001"), instance_id="iot-cn-test01")
    client = make_client()
    result = await client.query_ota_job("InstJob0000000000000001", instance_id="iot-cn-test01")
    assert result.job.job_id == "InstJob0000000000000001"
    assert emulator.calls[-1].params["IotInstanceId"] == "iot-cn-test01"


async def test_unknown_job_is_a_business_error(make_client) -> None:
    """Success=false under HTTP 200 becomes IotApiError with Code, ErrorMessage, RequestId."""
    with pytest.raises(IotApiError) as info:
        await make_client().query_ota_job("NoSuchJob000000000000001")
    error = info.value
    assert error.code == "iot.ota.JobNotFound" and error.request_id and error.http_status == 200
    assert error_kind(error) == "not_found"
    assert "RequestId" in str(error)


async def test_wrong_secret_is_redacted(make_client, caplog) -> None:
    """SignatureDoesNotMatch is not retried and its echoed StringToSign is not shown."""
    client = make_client(credential=Credential(TEST_KEY_ID, "wrong-secret"))
    with caplog.at_level(logging.DEBUG), pytest.raises(IotApiError) as info:
        await client.query_ota_job(JOB)
    error = info.value
    assert error.code == "SignatureDoesNotMatch" and error.http_status == 400
    assert error_kind(error) == "credentials"
    assert TEST_KEY_ID not in str(error) and "[redacted]" in error.message
    assert "wrong-secret" not in str(error) and "wrong-secret" not in caplog.text


async def test_unknown_access_key(make_client) -> None:
    """An AccessKeyId the gateway does not know is a credentials error, not retried."""
    client = make_client(credential=Credential("LTAInobody", "x"))
    with pytest.raises(IotApiError) as info:
        await client.query_ota_job(JOB)
    assert info.value.code == "InvalidAccessKeyId.NotFound"


@pytest.mark.parametrize("kind", ["throttle", "server_error", "internal", "reset"])
async def test_transient_failures_are_retried(make_client, emulator, kind) -> None:
    """Throttling, 503, InternalError and dropped connections are retried to success."""
    emulator.fail_next(kind, count=2)
    result = await make_client().query_ota_job(JOB)
    assert result.job.job_id == JOB
    assert emulator.count("QueryOTAJob") == 3


async def test_retry_after_header_is_honoured(make_client, emulator) -> None:
    """x-acs-retry-after makes the client wait that long before trying again."""
    emulator.fail_next("throttle", retry_after=0.4)
    start = time.monotonic()
    await make_client().query_ota_job(JOB)
    assert time.monotonic() - start >= 0.38


async def test_retries_are_bounded(make_client, emulator) -> None:
    """Past the retry budget the last error surfaces, typed as throttling."""
    emulator.fail_next("throttle", count=50)
    client = make_client(retry=RetryPolicy(attempts=3, backoff_seconds=0.01))
    with pytest.raises(IotThrottled) as info:
        await client.query_ota_job(JOB)
    assert info.value.code == "Throttling.User" and emulator.count("QueryOTAJob") == 3
    assert error_kind(info.value) == "throttled"


async def test_malformed_body_is_a_clear_error(make_client, emulator) -> None:
    """A non-JSON answer under HTTP 200 is IotBadResponse quoting it, and not retried."""
    emulator.fail_next("malformed")
    with pytest.raises(IotBadResponse) as info:
        await make_client().query_ota_job(JOB)
    assert "not JSON" in info.value.message and "502 Bad Gateway" in info.value.message
    assert emulator.count("QueryOTAJob") == 1


def test_a_proxy_error_page_under_5xx_is_retryable() -> None:
    """A 502 page that is not JSON is the platform's side: IotUnavailable, retried."""
    import httpx

    from bot.iot.client import parse_response

    page = httpx.Response(502, text="<html>502 Bad Gateway</html>")
    with pytest.raises(IotUnavailable) as info:
        parse_response(page)
    assert info.value.retryable and info.value.code == "HTTP502"


async def test_business_system_exception(make_client, emulator) -> None:
    """iot.system.SystemException arrives as an API error with ErrorMessage."""
    emulator.fail_next("business")
    with pytest.raises(IotApiError) as info:
        await make_client().query_ota_job(JOB)
    assert info.value.code == "iot.system.SystemException"
    assert info.value.message == "A system exception occurred."


async def test_timeouts_are_retried_then_reported(make_client, emulator) -> None:
    """A gateway that does not answer in time is retried, then reported as a timeout."""
    emulator.fail_next("slow", count=5)
    client = make_client(timeout=0.2, retry=RetryPolicy(attempts=2, backoff_seconds=0.01))
    with pytest.raises(IotTransportError) as info:
        await client.query_ota_job(JOB)
    assert info.value.code == "Timeout" and error_kind(info.value) == "unreachable"


async def test_connection_refused(make_client, emulator) -> None:
    """No server at the endpoint is a connection error after retries."""
    await emulator.stop()
    client = make_client(retry=RetryPolicy(attempts=2, backoff_seconds=0.01))
    with pytest.raises(IotTransportError) as info:
        await client.query_ota_job(JOB)
    assert info.value.code == "ConnectionError"


@pytest.mark.slow
async def test_quota_is_never_exceeded(make_client, emulator) -> None:
    """35 distinct jobs at once reach the emulator with zero Throttling answers."""
    emulator.auto_jobs = True
    client = make_client(qps=10)
    jobs = [f"QuotaJob{i:016d}" for i in range(35)]
    results = await asyncio.gather(*(client.query_ota_job(j) for j in jobs))
    assert [r.job.job_id for r in results] == jobs
    assert emulator.count("QueryOTAJob", code="Throttling.User") == 0
    assert emulator.count("QueryOTAJob") == 35


async def test_unavailable_is_classified(make_client, emulator) -> None:
    """503 past the budget is IotUnavailable (retryable, 'unreachable' in plain words)."""
    emulator.fail_next("server_error", count=10)
    client = make_client(retry=RetryPolicy(attempts=2, backoff_seconds=0.01))
    with pytest.raises(IotUnavailable) as info:
        await client.query_ota_job(JOB)
    assert info.value.http_status == 503 and info.value.request_id


@pytest.mark.parametrize(("kind", "calls"), [("reset", 1), ("server_error", 1), ("throttle", 2)])
async def test_a_write_is_retried_only_when_it_surely_did_not_run(
    make_client, emulator, kind, calls
) -> None:
    """A dropped connection or a 5xx may hide a cancel that took effect: not retried. A
    throttled write was refused before it ran: retried."""
    client = make_client(retry=RetryPolicy(attempts=3, backoff_seconds=0.01))
    emulator.fail_next(kind, count=1, action="CancelOTATaskByJob")
    if calls == 1:
        with pytest.raises(IotError):
            await client.cancel_tasks(JOB, frozenset({"queued"}))
    else:
        assert await client.cancel_tasks(JOB, frozenset({"queued"}))
    assert emulator.count("CancelOTATaskByJob") == calls


@pytest.mark.parametrize(
    ("kind", "error_type", "may_have_run"),
    [
        ("malformed", IotBadResponse, True),  # something answered: it may have run
        ("reset", IotTransportError, True),  # the connection broke after sending
        ("server_error", IotUnavailable, True),
        ("business", IotApiError, False),  # a clear refusal
        ("throttle", IotThrottled, False),  # refused before it ran
    ],
)
async def test_a_failed_write_says_whether_it_may_have_run(
    make_client, emulator, kind, error_type, may_have_run
) -> None:
    """error.may_have_run tells the Slack layer whether a failed cancel may have gone
    through all the same."""
    client = make_client(retry=RetryPolicy(attempts=1))
    emulator.fail_next(kind, action="CancelOTATaskByJob")
    with pytest.raises(error_type) as info:
        await client.cancel_tasks(JOB, frozenset({"queued"}))
    assert info.value.may_have_run is may_have_run


async def test_a_write_that_never_left_did_not_run(make_client, emulator) -> None:
    """No connection at all: the cancel surely did not run, so it was retried."""
    await emulator.stop()
    client = make_client(retry=RetryPolicy(attempts=2, backoff_seconds=0.01))
    with pytest.raises(IotTransportError) as info:
        await client.cancel_tasks(JOB, frozenset({"queued"}))
    assert info.value.code == "ConnectionError" and info.value.may_have_run is False


def test_the_environment_proxy_is_read_once_for_the_endpoint(monkeypatch) -> None:
    """HTTPS_PROXY applies to the endpoint unless NO_PROXY names it, as httpx reads it."""
    from bot.iot.http import _env_proxy

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxy = _env_proxy("https://iot.cn-shanghai.aliyuncs.com/")
    assert proxy is not None and proxy.url.host == "proxy.example"
    monkeypatch.setenv("NO_PROXY", "aliyuncs.com")
    assert _env_proxy("https://iot.cn-shanghai.aliyuncs.com/") is None
    assert _env_proxy("http://127.0.0.1:9/") is None  # no HTTP_PROXY set
