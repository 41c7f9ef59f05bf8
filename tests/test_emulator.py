"""The IoT gateway emulator, driven over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    DEMO_SECURITY_TOKEN,
    IotEmulator,
    fixtures,
    server,
)
from bot.emulator import __main__ as cli
from bot.emulator.server import utc_text
from bot.emulator.verify import API_VERSION, SIGNATURE_MISMATCH
from bot.iot.signing import (
    canonical_query,
    v2_sign,
    v2_string_to_sign,
    v3_canonical_request,
    v3_sign,
    v3_string_to_sign,
)
from tests.helpers import wait_until

EXAMPLE = fixtures.EXAMPLE_JOB_ID
UUID_UPPER = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def emu(emulator: IotEmulator) -> IotEmulator:
    """The shared emulator fixture (tests/conftest.py), under this file's short name."""
    return emulator


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


def host_of(base: str) -> str:
    return httpx.URL(base).netloc.decode()


def v3_request(
    base: str,
    params: dict[str, str],
    *,
    action: str = "QueryOTAJob",
    version: str = API_VERSION,
    key: str = DEMO_ACCESS_KEY_ID,
    secret: str = DEMO_ACCESS_KEY_SECRET,
    token: str | None = None,
    now: datetime | None = None,
    nonce: str | None = None,
    method: str = "POST",
) -> tuple[httpx.URL, dict[str, str]]:
    query = canonical_query(params)
    headers = v3_sign(
        method=method,
        host=host_of(base),
        query=query,
        body=b"",
        action=action,
        version=version,
        access_key_id=key,
        access_key_secret=secret,
        security_token=token,
        now=now or datetime.now(UTC),
        nonce=nonce or uuid.uuid4().hex,
    )
    return httpx.URL(base + "/?" + query), headers


def v2_url(
    base: str,
    params: dict[str, str],
    *,
    method: str = "POST",
    key: str = DEMO_ACCESS_KEY_ID,
    secret: str = DEMO_ACCESS_KEY_SECRET,
    token: str | None = None,
) -> tuple[httpx.URL, dict[str, str]]:
    signed = v2_sign(
        method=method,
        params=params,
        action="QueryOTAJob",
        version=API_VERSION,
        access_key_id=key,
        access_key_secret=secret,
        security_token=token,
        now=datetime.now(UTC),
        nonce=uuid.uuid4().hex,
    )
    return httpx.URL(base + "/?" + canonical_query(signed)), signed


async def query_job(
    client: httpx.AsyncClient, emu: IotEmulator, job_id: str = EXAMPLE, **kw: Any
) -> httpx.Response:
    url, headers = v3_request(emu.base_url, {"JobId": job_id}, **kw)
    return await client.post(url, headers=headers)


# --- the wire ----------------------------------------------------------------------


def test_httpx_keeps_an_encoded_query_as_is():
    """httpx.URL sends an already-encoded query byte for byte (no '+' for spaces, '*' kept)."""
    query = canonical_query({"JobId": "a*b c/d~e+f"})
    url = httpx.URL("http://127.0.0.1:1/?" + query)
    assert url.raw_path == b"/?" + query.encode()
    assert query == "JobId=a%2Ab%20c%2Fd~e%2Bf"


async def test_v3_success_returns_the_spec_example(emu, client):
    """A V3-signed QueryOTAJob returns the spec's example Data exactly, with an upper-case UUID."""
    response = await query_job(client, emu)
    assert response.status_code == 200
    body = response.json()
    assert body["Success"] is True
    assert body["Data"] == fixtures.SPEC_EXAMPLE
    assert UUID_UPPER.match(body["RequestId"])
    assert response.headers["x-acs-request-id"] == body["RequestId"]
    [call] = emu.calls
    assert (call.action, call.signature_version, call.status, call.code) == (
        "QueryOTAJob",
        "v3",
        200,
        None,
    )
    assert call.params == {"JobId": EXAMPLE}
    assert call.access_key_id == DEMO_ACCESS_KEY_ID


async def test_unmasked_example_id_resolves(emu, client):
    """The spec example is also served under a realistic unmasked JobId."""
    response = await query_job(client, emu, fixtures.EXAMPLE_JOB_ID_UNMASKED)
    data = response.json()["Data"]
    assert data == {**fixtures.SPEC_EXAMPLE, "JobId": fixtures.EXAMPLE_JOB_ID_UNMASKED}


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_v2_success(emu, client, method):
    """A V2 request (HMAC-SHA1, Signature in the query) verifies with the method it came with."""
    url, _ = v2_url(emu.base_url, {"JobId": EXAMPLE}, method=method)
    response = await client.request(method, url)
    assert response.status_code == 200, response.text
    assert response.json()["Data"]["JobId"] == EXAMPLE
    assert emu.calls[0].signature_version == "v2"


async def test_official_sdk_signatures_are_accepted(emu, client):
    """Requests signed by Alibaba's own openapi-util (V3 and V2) verify, independently of ours."""
    from alibabacloud_openapi_util.client import Client as Util
    from Tea.request import TeaRequest

    params = {"JobId": EXAMPLE}
    request = TeaRequest()
    request.method, request.pathname, request.query = "POST", "/", params
    request.headers = {
        "host": host_of(emu.base_url),
        "x-acs-action": "QueryOTAJob",
        "x-acs-version": API_VERSION,
        "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": Util.hex_encode(Util.hash(b"", "ACS3-HMAC-SHA256")),
    }
    payload = request.headers["x-acs-content-sha256"]
    auth = Util.get_authorization(
        request, "ACS3-HMAC-SHA256", payload, DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET
    )
    url = httpx.URL(emu.base_url + "/?" + canonical_query(params))
    response = await client.post(url, headers={**request.headers, "Authorization": auth})
    assert response.status_code == 200, response.text

    v2 = {
        "Action": "QueryOTAJob",
        "Format": "JSON",
        "Version": API_VERSION,
        "AccessKeyId": DEMO_ACCESS_KEY_ID,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **params,
    }
    v2["Signature"] = Util.get_rpcsignature(v2, "POST", DEMO_ACCESS_KEY_SECRET)
    response = await client.post(httpx.URL(emu.base_url + "/?" + canonical_query(v2)))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("sign", ["v3", "v2"])
async def test_reserved_characters_verify_from_the_raw_query(emu, client, sign):
    """Values holding '&', '=', '%41', '+', ' ', '*' verify, which needs the raw query string."""
    params = {"JobId": "a&b=c%41 +*~/é"}
    if sign == "v3":
        url, headers = v3_request(emu.base_url, params)
    else:
        (url, _), headers = v2_url(emu.base_url, params), {}
    response = await client.post(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["Code"] == "iot.ota.JobNotFound"
    assert emu.calls[0].params["JobId"] == "a&b=c%41 +*~/é"


# --- signature failures ------------------------------------------------------------


def assert_gateway_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["Code"] == code
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    return body


async def test_v3_wrong_secret_reports_server_string_to_sign(emu, client):
    """A wrong secret gives SignatureDoesNotMatch, its Message ending in the server StringToSign."""
    url, headers = v3_request(emu.base_url, {"JobId": EXAMPLE}, secret="wrong")
    body = assert_gateway_error(
        await client.post(url, headers=headers), 400, "SignatureDoesNotMatch"
    )
    signed = {k: v for k, v in headers.items() if k != "authorization"}
    canonical = v3_canonical_request(
        "POST", "/", url.query.decode(), signed, signed["x-acs-content-sha256"]
    )
    assert body["Message"] == SIGNATURE_MISMATCH + v3_string_to_sign(canonical)
    assert emu.count(code="SignatureDoesNotMatch") == 1


async def test_v2_wrong_secret_reports_server_string_to_sign(emu, client):
    """For V2 the mismatch Message carries the doubly encoded METHOD&%2F&... string."""
    url, signed = v2_url(emu.base_url, {"JobId": EXAMPLE}, secret="wrong")
    body = assert_gateway_error(await client.post(url), 400, "SignatureDoesNotMatch")
    assert body["Message"] == SIGNATURE_MISMATCH + v2_string_to_sign("POST", signed)
    assert body["Message"].split("is:")[1].startswith("POST&%2F&AccessKeyId%3D")


async def test_tampered_query_after_signing_is_rejected(emu, client):
    """Changing a parameter after signing (V3 and V2) breaks the signature."""
    url, headers = v3_request(emu.base_url, {"JobId": EXAMPLE})
    tampered = httpx.URL(str(url).replace("0200", "0300"))
    assert_gateway_error(await client.post(tampered, headers=headers), 400, "SignatureDoesNotMatch")
    url, _ = v2_url(emu.base_url, {"JobId": EXAMPLE})
    tampered = httpx.URL(str(url).replace("0200", "0300"))
    assert_gateway_error(await client.post(tampered), 400, "SignatureDoesNotMatch")


async def test_v3_body_must_match_content_sha256(emu, client):
    """A body that differs from what x-acs-content-sha256 declares fails verification."""
    url, headers = v3_request(emu.base_url, {"JobId": EXAMPLE})
    response = await client.post(url, headers=headers, content=b"JobId=other")
    assert_gateway_error(response, 400, "SignatureDoesNotMatch")


@pytest.mark.parametrize(
    ("skew", "ok"),
    [
        (timedelta(minutes=-14), True),
        (timedelta(minutes=-16), False),
        (timedelta(minutes=16), False),
    ],
)
async def test_timestamp_window_is_15_minutes(emu, client, skew, ok):
    """An x-acs-date 15+ minutes off the emulator clock, either way, is InvalidTimeStamp.Expired."""
    response = await query_job(client, emu, now=datetime.now(UTC) + skew)
    if ok:
        assert response.status_code == 200
    else:
        assert_gateway_error(response, 400, "InvalidTimeStamp.Expired")


async def test_reused_nonce_is_rejected(emu, client):
    """The same signature nonce twice within 15 minutes gives SignatureNonceUsed."""
    assert (await query_job(client, emu, nonce="n-1")).status_code == 200
    assert_gateway_error(await query_job(client, emu, nonce="n-1"), 400, "SignatureNonceUsed")
    emu.reset()
    assert (await query_job(client, emu, nonce="n-1")).status_code == 200


async def test_unknown_access_key(emu, client):
    """An AccessKeyId the emulator does not know gives 404 InvalidAccessKeyId.NotFound."""
    response = await query_job(client, emu, key="LTAInobody")
    assert_gateway_error(response, 404, "InvalidAccessKeyId.NotFound")
    assert emu.calls[0].access_key_id == "LTAInobody"


async def test_sts_token_good_and_bad(emu, client):
    """A known STS token is accepted (V3 header, V2 SecurityToken); others are rejected."""
    assert (await query_job(client, emu, token=DEMO_SECURITY_TOKEN)).status_code == 200
    url, _ = v2_url(emu.base_url, {"JobId": EXAMPLE}, token=DEMO_SECURITY_TOKEN)
    assert (await client.post(url)).status_code == 200
    assert emu.calls[-1].params["SecurityToken"] == "<redacted>"  # the log keeps no tokens

    response = await query_job(client, emu, token="CAISforged")
    assert_gateway_error(response, 400, "InvalidSecurityToken.Malformed")
    url, _ = v2_url(emu.base_url, {"JobId": EXAMPLE}, token="CAISforged")
    assert_gateway_error(await client.post(url), 400, "InvalidSecurityToken.Malformed")


async def test_sts_token_of_another_key_is_a_mismatch(client):
    """A token issued for another AccessKeyId gives InvalidSecurityToken.MismatchWithAccessKey."""
    creds = {"LTAIa": "sa", "LTAIb": "sb"}
    async with IotEmulator(credentials=creds, sts_tokens={"LTAIa": "CAISa"}) as emu:
        response = await query_job(client, emu, key="LTAIb", secret="sb", token="CAISa")
        assert_gateway_error(response, 400, "InvalidSecurityToken.MismatchWithAccessKey")


async def test_v3_signed_headers_must_cover_the_token(emu, client):
    """An x-acs-security-token header left out of SignedHeaders is IncompleteSignature."""
    url, headers = v3_request(emu.base_url, {"JobId": EXAMPLE})
    headers["x-acs-security-token"] = DEMO_SECURITY_TOKEN
    assert_gateway_error(await client.post(url, headers=headers), 400, "IncompleteSignature")


async def test_v3_signed_headers_must_include_the_nonce(emu, client):
    """SignedHeaders without x-acs-signature-nonce is IncompleteSignature."""
    url, headers = v3_request(emu.base_url, {"JobId": EXAMPLE})
    headers["authorization"] = headers["authorization"].replace("x-acs-signature-nonce;", "")
    assert_gateway_error(await client.post(url, headers=headers), 400, "IncompleteSignature")


async def test_unsigned_request_is_missing_signature(emu, client):
    """Neither an ACS3 Authorization header nor a Signature parameter gives MissingParameter."""
    response = await client.post(emu.base_url + "/?Action=QueryOTAJob&JobId=x")
    body = assert_gateway_error(response, 400, "MissingParameter")
    assert "Signature" in body["Message"]
    assert emu.calls[0].signature_version is None


async def test_unknown_action_and_version(emu, client):
    """An unknown action is 404 InvalidAction.NotFound; a Version not 2018-01-20, InvalidVersion."""
    url, headers = v3_request(emu.base_url, {}, action="DeleteEverything")
    assert_gateway_error(await client.post(url, headers=headers), 404, "InvalidAction.NotFound")
    url, headers = v3_request(emu.base_url, {"JobId": EXAMPLE}, version="2017-04-20")
    assert_gateway_error(await client.post(url, headers=headers), 400, "InvalidVersion")


async def test_missing_job_id(emu, client):
    """QueryOTAJob without JobId is a gateway MissingParameter error."""
    url, headers = v3_request(emu.base_url, {})
    body = assert_gateway_error(await client.post(url, headers=headers), 400, "MissingParameter")
    assert '"JobId"' in body["Message"]


# --- business behaviour ----------------------------------------------------------


async def test_unknown_job_is_a_business_error_with_http_200(emu, client):
    """An unknown JobId answers HTTP 200 with Success false, Code iot.ota.JobNotFound."""
    response = await query_job(client, emu, "NoSuchJobAbCdEfGhIjKl0200")
    assert response.status_code == 200
    body = response.json()
    assert body["Success"] is False
    assert body["Code"] == "iot.ota.JobNotFound"
    assert body["ErrorMessage"] == "The OTA job does not exist."
    assert UUID_UPPER.match(body["RequestId"])
    assert "Data" not in body
    assert emu.count(code="iot.ota.JobNotFound") == 1


async def test_instance_scoping(emu, client):
    """Instance jobs need the matching IotInstanceId; unscoped jobs need none."""
    emu.add_job(fixtures.make_job("InstJobAbCdEfGhIjKlMn0200"), instance_id="iot-cn-0pp1n8t0001")

    async def ask(job_id: str, instance: str | None) -> dict[str, Any]:
        params = {"JobId": job_id} | ({"IotInstanceId": instance} if instance else {})
        url, headers = v3_request(emu.base_url, params)
        return (await client.post(url, headers=headers)).json()

    assert (await ask("InstJobAbCdEfGhIjKlMn0200", "iot-cn-0pp1n8t0001"))["Success"] is True
    missing = await ask("InstJobAbCdEfGhIjKlMn0200", None)
    assert missing["Code"] == "iot.system.InstanceNotFound"
    other = await ask("InstJobAbCdEfGhIjKlMn0200", "iot-cn-unknown")
    assert other["Code"] == "iot.system.InstanceNotFound"
    unscoped_in_instance = await ask(EXAMPLE, "iot-cn-0pp1n8t0001")
    assert unscoped_in_instance["Code"] == "iot.ota.JobNotFound"


async def test_auto_jobs_mints_any_well_formed_id(client):
    """With auto_jobs, any unknown well-formed JobId is answered with a stored IN_PROGRESS job."""
    async with IotEmulator(auto_jobs=True, qps=0) as emu:
        ids = [f"BenchJob{i:04d}" for i in range(3)]
        for job_id in ids:
            data = (await query_job(client, emu, job_id)).json()["Data"]
            assert data["JobId"] == job_id
            assert data["JobStatus"] == "IN_PROGRESS"
        assert set(ids) <= set(emu.jobs)
        bad = (await query_job(client, emu, "bad id!")).json()
        assert bad["Code"] == "iot.ota.JobNotFound"


async def test_fixtures_cover_the_modes_and_parse():
    """Every fixture parses as an OtaJob, and the set covers each mode the app must render."""
    from bot.iot.models import OtaJob

    jobs = fixtures.default_jobs()
    parsed = {job_id: OtaJob.model_validate(data) for job_id, data in jobs.items()}
    assert parsed[fixtures.PLANNED_JOB_ID].utc_schedule_time is not None
    assert parsed[fixtures.COMPLETED_JOB_ID].utc_end_time is not None
    assert parsed[fixtures.CANCELED_JOB_ID].job_status == "CANCELED"
    gray = jobs[fixtures.GRAY_JOB_ID]
    assert (gray["GrayPercent"], gray["DynamicMode"], gray["SelectionType"]) == (
        "50.00",
        1,
        "DYNAMIC",
    )
    assert parsed[fixtures.VERIFY_JOB_ID].is_verify
    assert "<!channel>" in jobs[fixtures.HOSTILE_JOB_ID]["Tags"]["OtaTagDTO"][0]["Value"]
    assert parsed[fixtures.EXTRA_FIELD_JOB_ID].extras == {"NewField": "x"}
    assert jobs[fixtures.NULL_SRC_JOB_ID]["SrcVersions"] is None
    assert len({fixtures.make_job(f"B{i}")["JobId"] for i in range(60)}) == 60


# --- quota -------------------------------------------------------------------------


async def test_eleven_concurrent_calls_throttle_exactly_one(emu, client):
    """At 10 QPS, 11 simultaneous calls give exactly one Throttling.User, logged as such."""
    responses = await asyncio.gather(*(query_job(client, emu) for _ in range(11)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 10 + [400]
    [throttled] = [r for r in responses if r.status_code == 400]
    assert_gateway_error(throttled, 400, "Throttling.User")
    assert emu.count() == 11
    assert emu.count(code="Throttling.User") == 1


async def test_quota_window_slides_and_rejections_take_no_slot(client):
    """The window is one sliding second per key and action; a throttled call consumes nothing."""
    clock = FakeClock()
    creds = {DEMO_ACCESS_KEY_ID: DEMO_ACCESS_KEY_SECRET, "LTAIother": "s2"}
    async with IotEmulator(clock=clock, qps=2, credentials=creds) as emu:
        assert (await query_job(client, emu)).status_code == 200
        clock.now += 0.5
        assert (await query_job(client, emu)).status_code == 200
        assert (await query_job(client, emu)).status_code == 400  # 2 in the last second
        assert (await query_job(client, emu, key="LTAIother", secret="s2")).status_code == 200
        clock.now += 0.5  # the first call leaves the window; the rejected one never entered
        assert (await query_job(client, emu)).status_code == 200
        assert (await query_job(client, emu)).status_code == 400
        assert emu.count(code="Throttling.User") == 2


async def test_latency_delays_answers_but_not_arrival(emu, client):
    """latency sleeps before each answer; the call's time is when it arrived (the
    emulator's clock is driven here: it moves on while the answer waits)."""
    emu.clock = clock = FakeClock()
    arrived = clock.now
    emu.latency = 0.2
    started = time.monotonic()
    answer = asyncio.create_task(query_job(client, emu))
    await wait_until(lambda: emu.calls)  # it arrived; its answer waits
    clock.now += 60
    assert (await answer).status_code == 200
    assert time.monotonic() - started >= 0.2  # at least the latency: it cannot come sooner
    assert emu.calls[0].at == arrived


# --- scripted failures -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("throttle", 400, "Throttling.User"),
        ("server_error", 503, "ServiceUnavailable"),
        ("internal", 500, "InternalError"),
    ],
)
async def test_scripted_gateway_failures(emu, client, kind, status, code):
    """fail_next answers the next call with the gateway error of that kind, then recovers."""
    emu.fail_next(kind)
    assert_gateway_error(await query_job(client, emu), status, code)
    assert (await query_job(client, emu)).status_code == 200
    assert emu.count(code=code) == 1
    assert emu.calls[0].scripted == kind


async def test_scripted_throttle_sends_retry_after_in_ms(emu, client):
    """retry_after (seconds) is sent as x-acs-retry-after in milliseconds."""
    emu.fail_next("throttle", retry_after=1.5)
    response = await query_job(client, emu)
    assert response.headers["x-acs-retry-after"] == "1500"
    assert "x-acs-retry-after" not in (await query_job(client, emu)).headers


async def test_scripted_business_failure(emu, client):
    """The business script answers HTTP 200 with iot.system.SystemException."""
    emu.fail_next("business")
    response = await query_job(client, emu)
    assert response.status_code == 200
    body = response.json()
    assert body["Success"] is False
    assert body["Code"] == "iot.system.SystemException"
    assert body["ErrorMessage"] == "A system exception occurred."
    assert UUID_UPPER.match(body["RequestId"])


async def test_scripted_malformed_body(emu, client):
    """The malformed script answers HTTP 200 with an HTML page instead of JSON."""
    emu.fail_next("malformed")
    response = await query_job(client, emu)
    assert response.status_code == 200
    assert response.text.startswith("<html>")
    with pytest.raises(ValueError):
        response.json()
    assert emu.count(code="Emulator.Malformed") == 1


async def test_scripted_reset_closes_without_answer(emu, client):
    """The reset script drops the connection without a response."""
    emu.fail_next("reset")
    with pytest.raises(httpx.RemoteProtocolError):
        await query_job(client, emu)
    assert (emu.calls[0].status, emu.calls[0].code) == (0, "Emulator.Reset")
    assert (await query_job(client, emu)).status_code == 200


async def test_scripted_slow_trips_client_timeout():
    """A slow script outlasts a client timeout, and stop() does not wait for it."""
    emu = IotEmulator()
    await emu.start()
    emu.fail_next("slow")
    async with httpx.AsyncClient(timeout=0.3) as short:
        with pytest.raises(httpx.ReadTimeout):
            await query_job(short, emu)
    # The answer is held for 30 s: stop() wakes it instead of waiting (a hang fails here).
    await asyncio.wait_for(emu.stop(), timeout=10)
    assert emu.calls[0].scripted == "slow"


async def test_scripted_failures_count_and_action_filter(emu, client):
    """count= repeats a failure; action= limits it to that action; scripts run in order."""
    emu.fail_next("internal", action="ListOTATaskByJob")
    emu.fail_next("server_error", count=2)
    statuses = [(await query_job(client, emu)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    with pytest.raises(ValueError):
        emu.fail_next("explode")


# --- job state ---------------------------------------------------------------------


async def test_set_status_stamps_times_with_the_emulator_clock():
    """set_status updates JobStatus, UtcModified, UtcStartTime and UtcEndTime from the clock."""
    clock = FakeClock()
    clock.now = datetime(2024, 6, 1, 12, 0, 0, 250000, tzinfo=UTC).timestamp()
    emu = IotEmulator(clock=clock)
    job = emu.jobs[fixtures.PLANNED_JOB_ID]
    emu.set_status(fixtures.PLANNED_JOB_ID, "IN_PROGRESS")
    assert job["JobStatus"] == "IN_PROGRESS"
    assert job["UtcStartTime"] == job["UtcModified"] == "2024-06-01T12:00:00.250Z"
    assert "UtcEndTime" not in job
    clock.now += 3600
    emu.set_status(fixtures.PLANNED_JOB_ID, "COMPLETED")
    assert job["UtcEndTime"] == job["UtcModified"] == "2024-06-01T13:00:00.250Z"
    assert job["UtcStartTime"] == "2024-06-01T12:00:00.250Z"
    with pytest.raises(ValueError):
        emu.set_status(fixtures.PLANNED_JOB_ID, "DONE")
    with pytest.raises(KeyError):
        emu.set_status("NoSuchJob", "COMPLETED")


async def test_http_control_endpoints(emu, client):
    """GET /_emulator/calls shows the log; POST /_emulator/jobs/{id}/status moves a job."""
    await query_job(client, emu)
    calls = (await client.get(emu.base_url + "/_emulator/calls")).json()
    assert [c["action"] for c in calls] == ["QueryOTAJob"]
    assert calls[0]["status"] == 200

    path = f"/_emulator/jobs/{fixtures.EXAMPLE_JOB_ID_UNMASKED}/status"
    response = await client.post(emu.base_url + path, json={"status": "CANCELED"})
    assert response.status_code == 200
    assert response.json()["JobStatus"] == "CANCELED"
    data = (await query_job(client, emu, fixtures.EXAMPLE_JOB_ID_UNMASKED)).json()["Data"]
    assert data["JobStatus"] == "CANCELED"

    bad = await client.post(emu.base_url + path, json={"status": "DONE"})
    assert bad.status_code == 400
    unknown = await client.post(emu.base_url + "/_emulator/jobs/Nope/status", json={"status": "X"})
    assert unknown.status_code == 404
    assert len((await client.get(emu.base_url + "/_emulator/calls")).json()) == 2


async def test_cli_prints_what_the_app_needs(capsys):
    """The CLI prints the base URL, the env vars to set and the fixture JobIds, then serves."""
    task = asyncio.create_task(cli.serve(cli.parse_args(["--port", "0", "--qps", "5"])))
    out = ""
    for _ in range(100):
        await asyncio.sleep(0.02)
        out += capsys.readouterr().out
        if "Ctrl-C" in out:
            break
    base = re.search(r"IOT_ENDPOINT=(http://127\.0\.0\.1:\d+)", out)
    assert base
    async with httpx.AsyncClient(timeout=5) as c:
        assert (await c.get(base.group(1) + "/_emulator/calls")).json() == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert f"ALIBABA_CLOUD_ACCESS_KEY_ID={DEMO_ACCESS_KEY_ID}" in out
    assert f"ALIBABA_CLOUD_ACCESS_KEY_SECRET={DEMO_ACCESS_KEY_SECRET}" in out
    assert fixtures.EXAMPLE_JOB_ID_UNMASKED in out


# --- ListOTATaskByJob --------------------------------------------------------------

TASK_FIELDS = {
    "TaskId",
    "TaskStatus",
    "Progress",
    "TaskDesc",
    "Timeout",
    "DeviceName",
    "IotId",
    "ProductKey",
    "ProductName",
    "SrcVersion",
    "DestVersion",
    "FirmwareId",
    "JobId",
    "UtcCreate",
    "UtcModified",
}


async def list_tasks(
    client: httpx.AsyncClient, emu: IotEmulator, job_id: str = EXAMPLE, **params: str
) -> dict[str, Any]:
    url, headers = v3_request(emu.base_url, {"JobId": job_id, **params}, action="ListOTATaskByJob")
    response = await client.post(url, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["Data"]["SimpleOTATaskInfo"]


async def test_list_tasks_per_status_total_with_page_size_1(emu, client):
    """One PageSize=1 call per status reads that status's count from Total, with one row."""
    expected, _ = fixtures.default_tasks(fixtures.SPEC_EXAMPLE)
    assert emu.task_counts(EXAMPLE) == {s: expected.get(s, 0) for s in fixtures.TASK_STATUSES}
    for status in fixtures.TASK_STATUSES:
        body = await list_tasks(client, emu, TaskStatus=status, PageSize="1")
        total = expected.get(status, 0)
        assert body["Success"] is True
        assert UUID_UPPER.match(body["RequestId"])
        assert (body["Total"], body["PageSize"], body["PageCount"], body["CurrentPage"]) == (
            total,
            1,
            total,
            1,
        )
        assert len(rows(body)) == min(total, 1)
        for row in rows(body):
            assert set(row) == TASK_FIELDS
            assert row["TaskStatus"] == status
            assert row["JobId"] == EXAMPLE
            assert row["DestVersion"] == fixtures.SPEC_EXAMPLE["DestVersion"]
            assert row["Timeout"] == "5"
            assert isinstance(row["Progress"], str)
            assert (row["TaskDesc"] != "") == (status == "FAILED")
            if status == "SUCCEEDED":
                assert row["Progress"] == "100"


async def test_list_tasks_pages_are_slices_in_task_id_order(emu, client):
    """Pages cover every task once in TaskId order, the last one partial, then empty pages."""
    emu.qps = 0
    emu.set_tasks(EXAMPLE, {"SUCCEEDED": 15, "FAILED": 8})
    first = await list_tasks(client, emu)  # defaults: CurrentPage 1, PageSize 10
    assert (first["Total"], first["PageSize"], first["PageCount"], first["CurrentPage"]) == (
        23,
        10,
        3,
        1,
    )
    seen = rows(first)
    for page in (2, 3):
        body = await list_tasks(client, emu, CurrentPage=str(page), PageSize="10")
        assert (body["CurrentPage"], body["PageCount"]) == (page, 3)
        seen += rows(body)
    assert len(rows(body)) == 3
    ids = [row["TaskId"] for row in seen]
    assert ids == sorted(ids) and len(set(ids)) == 23
    assert [row["DeviceName"] for row in seen] == [f"dev-{i:06d}" for i in range(23)]
    beyond = await list_tasks(client, emu, CurrentPage="4")
    assert (beyond["Total"], rows(beyond)) == (23, [])
    failed = await list_tasks(client, emu, TaskStatus="FAILED", PageSize="5", CurrentPage="2")
    assert (failed["Total"], failed["PageCount"], len(rows(failed))) == (8, 2, 3)
    assert [r["TaskDesc"] for r in rows(failed)] == list(fixtures.DEFAULT_FAILURE_REASONS[:3])


async def test_list_tasks_device_names_filter(emu, client):
    """DeviceNames.N narrows to those devices (unknown names match nothing), with TaskStatus."""
    emu.set_tasks(EXAMPLE, {"QUEUED": 3, "SUCCEEDED": 3})
    names = {"DeviceNames.1": "dev-000004", "DeviceNames.2": "dev-000001"}
    body = await list_tasks(client, emu, **names, **{"DeviceNames.3": "ghost"})
    assert body["Total"] == 2
    assert [r["DeviceName"] for r in rows(body)] == ["dev-000001", "dev-000004"]
    assert [r["TaskStatus"] for r in rows(body)] == ["QUEUED", "SUCCEEDED"]
    only = await list_tasks(client, emu, TaskStatus="SUCCEEDED", **names)
    assert [r["DeviceName"] for r in rows(only)] == ["dev-000004"]
    none = await list_tasks(client, emu, **{"DeviceNames.1": "dev-999999"})
    assert (none["Total"], none["PageCount"], rows(none)) == (0, 0, [])


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"TaskStatus": "DONE"}, "iot.check.InvalidFormattedParameter"),
        ({"TaskStatus": "succeeded"}, "iot.check.InvalidFormattedParameter"),
        ({"PageSize": "0"}, "iot.common.InvalidPageParams"),
        ({"PageSize": "101"}, "iot.common.InvalidPageParams"),
        ({"PageSize": "ten"}, "iot.common.InvalidPageParams"),
        ({"CurrentPage": "0"}, "iot.common.InvalidPageParams"),
    ],
)
async def test_list_tasks_invalid_parameters(emu, client, params, code):
    """A bad TaskStatus or page parameter is a business error under HTTP 200."""
    body = await list_tasks(client, emu, **params)
    assert (body["Success"], body["Code"]) == (False, code)
    assert body["ErrorMessage"]
    assert "Data" not in body and "Total" not in body
    assert emu.count("ListOTATaskByJob", code=code) == 1


async def test_list_tasks_page_size_100_is_allowed(emu, client):
    """PageSize 100, the maximum, is accepted."""
    emu.set_tasks(EXAMPLE, {"IN_PROGRESS": 150})
    body = await list_tasks(client, emu, PageSize="100", CurrentPage="2")
    assert (body["Total"], body["PageCount"], len(rows(body))) == (150, 2, 50)


async def test_list_tasks_unknown_job_and_missing_job_id(emu, client):
    """An unknown JobId is iot.ota.JobNotFound as for QueryOTAJob; no JobId, MissingParameter."""
    body = await list_tasks(client, emu, "NoSuchJobAbCdEfGhIjKl0200")
    assert (body["Success"], body["Code"]) == (False, "iot.ota.JobNotFound")
    assert body["ErrorMessage"] == "The OTA job does not exist."
    url, headers = v3_request(emu.base_url, {}, action="ListOTATaskByJob")
    response = await client.post(url, headers=headers)
    assert '"JobId"' in assert_gateway_error(response, 400, "MissingParameter")["Message"]


async def test_list_tasks_instance_scoping(emu, client):
    """ListOTATaskByJob scopes jobs to IotInstanceId exactly as QueryOTAJob does."""
    job_id = "InstJobAbCdEfGhIjKlMn0200"
    emu.add_job(fixtures.make_job(job_id), instance_id="iot-cn-0pp1n8t0001")
    ok = await list_tasks(client, emu, job_id, IotInstanceId="iot-cn-0pp1n8t0001")
    assert ok["Success"] is True and ok["Total"] == sum(emu.task_counts(job_id).values()) > 0
    assert (await list_tasks(client, emu, job_id))["Code"] == "iot.system.InstanceNotFound"
    other = await list_tasks(client, emu, job_id, IotInstanceId="iot-cn-unknown")
    assert other["Code"] == "iot.system.InstanceNotFound"
    unscoped = await list_tasks(client, emu, EXAMPLE, IotInstanceId="iot-cn-0pp1n8t0001")
    assert unscoped["Code"] == "iot.ota.JobNotFound"


async def test_hundred_thousand_tasks_count(client):
    """With 100,000 tasks, the seven PageSize=1 count calls give each status's total, and
    the last page holds the last device. (Their speed is not asserted: a loaded machine
    would fail such a test, not the emulator.)"""
    counts = {
        "CONFIRM": 1_000,
        "QUEUED": 30_000,
        "NOTIFIED": 2_000,
        "IN_PROGRESS": 7_000,
        "SUCCEEDED": 55_000,
        "FAILED": 4_000,
        "CANCELED": 1_000,
    }
    assert sum(counts.values()) == 100_000
    async with IotEmulator(qps=0) as emu:
        emu.set_tasks(EXAMPLE, counts)
        totals = {
            status: (await list_tasks(client, emu, TaskStatus=status, PageSize="1"))["Total"]
            for status in fixtures.TASK_STATUSES
        }
        assert totals == counts
        last = await list_tasks(client, emu, PageSize="100", CurrentPage="1000")
        assert [r["DeviceName"] for r in rows(last)][-1] == "dev-099999"


async def test_set_task_status_moves_a_device_between_counts(emu, client):
    """set_task_status moves one device to another status, stamping UtcModified, with its desc."""
    emu.clock = clock = FakeClock()  # now: signatures must stay within their window
    emu.set_tasks(EXAMPLE, {"IN_PROGRESS": 3, "SUCCEEDED": 2})
    emu.set_task_status(EXAMPLE, "dev-000001", "FAILED", desc="upgrade timeout")
    assert emu.task_counts(EXAMPLE)["IN_PROGRESS"] == 2
    failed = await list_tasks(client, emu, TaskStatus="FAILED")
    [row] = rows(failed)
    assert (row["DeviceName"], row["TaskDesc"]) == ("dev-000001", "upgrade timeout")
    assert row["UtcModified"] == utc_text(clock.now)
    in_progress = await list_tasks(client, emu, TaskStatus="IN_PROGRESS")
    assert [r["DeviceName"] for r in rows(in_progress)] == ["dev-000000", "dev-000002"]

    emu.set_task_status(EXAMPLE, "dev-000001", "SUCCEEDED")
    succeeded = rows(await list_tasks(client, emu, TaskStatus="SUCCEEDED"))
    assert [r["DeviceName"] for r in succeeded] == ["dev-000001", "dev-000003", "dev-000004"]
    assert succeeded[0]["TaskDesc"] == "" and succeeded[0]["Progress"] == "100"
    assert emu.task_counts(EXAMPLE)["FAILED"] == 0
    with pytest.raises(KeyError):
        emu.set_task_status(EXAMPLE, "ghost", "FAILED")
    with pytest.raises(ValueError):
        emu.set_task_status(EXAMPLE, "dev-000000", "DONE")


async def test_add_task_keeps_hostile_desc_and_versions(emu, client):
    """add_task appends a hand-made task whose TaskDesc and SrcVersion come back verbatim."""
    emu.set_tasks(EXAMPLE, {"SUCCEEDED": 2})
    task_id = emu.add_task(
        EXAMPLE,
        device_name="lab <@U1> & co",
        status="FAILED",
        desc=fixtures.HOSTILE_TEXT,
        src_version="0.9.0-rc1",
    )
    body = await list_tasks(client, emu, **{"DeviceNames.1": "lab <@U1> & co"})
    [row] = rows(body)
    assert row["TaskId"] == task_id
    assert (row["TaskDesc"], row["SrcVersion"]) == (fixtures.HOSTILE_TEXT, "0.9.0-rc1")
    every = rows(await list_tasks(client, emu))
    assert every[-1]["TaskId"] == task_id == max(r["TaskId"] for r in every)
    with pytest.raises(ValueError):
        emu.add_task(EXAMPLE, device_name="dev-000000", status="QUEUED")
    with pytest.raises(ValueError):
        emu.set_tasks(EXAMPLE, {"DONE": 1})
    with pytest.raises(KeyError):
        emu.set_tasks("NoSuchJob", {"QUEUED": 1})


async def test_default_tasks_follow_the_fixture_status(client):
    """Fixture jobs and auto_jobs jobs start with device tasks consistent with their status."""
    async with IotEmulator(auto_jobs=True, qps=0) as emu:
        assert sum(emu.task_counts(fixtures.PLANNED_JOB_ID).values()) == 0
        completed = emu.task_counts(fixtures.COMPLETED_JOB_ID)
        assert completed["SUCCEEDED"] > completed["FAILED"] > 0
        assert completed["QUEUED"] == completed["IN_PROGRESS"] == 0
        example = emu.task_counts(EXAMPLE)
        assert example["FAILED"] == 2 and example["IN_PROGRESS"] and example["QUEUED"]
        hostile = await list_tasks(client, emu, fixtures.HOSTILE_JOB_ID, TaskStatus="FAILED")
        assert rows(hostile)[0]["TaskDesc"] == fixtures.HOSTILE_TEXT
        minted = await list_tasks(client, emu, "BenchJob0001")
        assert minted["Success"] is True and minted["Total"] > 0
        assert {r["JobId"] for r in rows(minted)} == {"BenchJob0001"}
        assert "BenchJob0001" in emu.jobs


async def test_list_tasks_has_its_own_quota_window(emu, client):
    """ListOTATaskByJob shares the qps setting but counts in a window apart from QueryOTAJob."""
    queries = [query_job(client, emu) for _ in range(10)]
    lists = [list_tasks(client, emu, PageSize="1") for _ in range(10)]
    await asyncio.gather(*queries, *lists)
    assert emu.count(code="Throttling.User") == 0
    url, headers = v3_request(emu.base_url, {"JobId": EXAMPLE}, action="ListOTATaskByJob")
    assert_gateway_error(await client.post(url, headers=headers), 400, "Throttling.User")
    assert emu.count("ListOTATaskByJob", code="Throttling.User") == 1


async def test_http_task_control_endpoints(emu, client):
    """POST /_emulator/jobs/{id}/tasks sets the counts; GET returns per-status counts."""
    path = emu.base_url + f"/_emulator/jobs/{EXAMPLE}/tasks"
    before = (await client.get(path)).json()
    assert before["counts"] == emu.task_counts(EXAMPLE)
    assert before["Total"] == sum(before["counts"].values())

    payload = {"counts": {"SUCCEEDED": 7, "FAILED": 3}, "failure_reasons": ["disk full"]}
    response = await client.post(path, json=payload)
    assert response.status_code == 200, response.text
    assert response.json()["counts"]["FAILED"] == 3
    after = (await client.get(path)).json()
    assert after["Total"] == 10
    assert after["counts"] == {s: payload["counts"].get(s, 0) for s in fixtures.TASK_STATUSES}
    failed = await list_tasks(client, emu, TaskStatus="FAILED")
    assert {r["TaskDesc"] for r in rows(failed)} == {"disk full"}

    for bad in ({"counts": {"DONE": 1}}, {"counts": {"QUEUED": -1}}, {"nope": 1}, [1]):
        assert (await client.post(path, json=bad)).status_code == 400, bad
    assert (await client.post(path, content=b"not json")).status_code == 400
    unknown = emu.base_url + "/_emulator/jobs/Nope/tasks"
    assert (await client.get(unknown)).status_code == 404
    assert (await client.post(unknown, json={"counts": {}})).status_code == 404
    assert emu.count("ListOTATaskByJob") == 1  # control paths are not logged


# --- firmware and job lists, write actions -----------------------------------------

FIRMWARE_FIELDS = {
    "FirmwareId",
    "FirmwareName",
    "ProductKey",
    "ProductName",
    "SrcVersion",
    "DestVersion",
    "ModuleName",
    "Status",
    "Type",
    "FirmwareSize",
    "SignMethod",
    "UtcCreate",
    "UtcModified",
}
JOB_INFO_FIELDS = set(server.JOB_INFO_FIELDS)
MAKE_JOB_FIRMWARE = fixtures.make_job("x")["FirmwareId"]
SPEC_FIRMWARE = fixtures.SPEC_EXAMPLE["FirmwareId"]
INSTANCE = "iot-cn-0pp1n8t0001"
ALL_CANCEL_FLAGS = (
    "CancelQueuedTask",
    "CancelNotifiedTask",
    "CancelInProgressTask",
    "CancelScheduledTask",
    "CancelUnconfirmedTask",
)


async def api(
    client: httpx.AsyncClient, emu: IotEmulator, action: str, **params: str
) -> httpx.Response:
    url, headers = v3_request(emu.base_url, params, action=action)
    return await client.post(url, headers=headers)


async def call(client: httpx.AsyncClient, emu: IotEmulator, action: str, **params: str) -> dict:
    """A signed call answered with HTTP 200 (success or business error): its body."""
    response = await api(client, emu, action, **params)
    assert response.status_code == 200, response.text
    return response.json()


def firmware_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["FirmwareInfo"]["SimpleFirmwareInfo"]


def job_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["Data"]["SimpleOTAJobInfo"]


def assert_business_error(body: dict[str, Any], code: str) -> None:
    assert (body["Success"], body["Code"]) == (False, code), body
    assert body["ErrorMessage"]
    assert UUID_UPPER.match(body["RequestId"])


def assert_write_ok(body: dict[str, Any]) -> None:
    assert body["Success"] is True, body
    assert set(body) == {"RequestId", "Success"}
    assert UUID_UPPER.match(body["RequestId"])


async def task_totals(client: httpx.AsyncClient, emu: IotEmulator, job_id: str) -> dict:
    """Per-status counts the way the app reads them: one PageSize=1 call per status."""
    return {
        status: (await list_tasks(client, emu, job_id, TaskStatus=status, PageSize="1"))["Total"]
        for status in fixtures.TASK_STATUSES
    }


async def test_list_firmware_derives_one_firmware_per_firmware_id(emu, client):
    """ListOTAFirmware gives one SimpleFirmwareInfo per FirmwareId of the jobs, newest first."""
    body = await call(client, emu, "ListOTAFirmware")
    assert body["Success"] is True
    assert (body["Total"], body["PageSize"], body["PageCount"], body["CurrentPage"]) == (
        2,
        10,
        1,
        1,
    )
    newer, older = firmware_rows(body)
    for row in (newer, older):
        assert set(row) == FIRMWARE_FIELDS
        assert (row["Type"], row["Status"], row["SrcVersion"]) == (0, 1, "")
        assert isinstance(row["FirmwareSize"], int) and row["FirmwareSize"] > 0
    planned = fixtures.default_jobs()[fixtures.PLANNED_JOB_ID]  # first of the tied jobs
    assert newer["FirmwareId"] == MAKE_JOB_FIRMWARE
    assert (newer["FirmwareName"], newer["ProductKey"], newer["DestVersion"]) == (
        planned["Name"],
        planned["ProductKey"],
        planned["DestVersion"],
    )
    assert newer["UtcCreate"] == planned["UtcCreate"]
    assert older["FirmwareId"] == SPEC_FIRMWARE
    assert (older["FirmwareName"], older["DestVersion"], older["UtcCreate"]) == (
        "firmware2",
        "1.0.1",
        fixtures.SPEC_EXAMPLE["UtcCreate"],
    )


async def test_list_firmware_takes_the_earliest_job_and_added_firmwares(emu, client):
    """The earliest job names a derived firmware; add_firmware adds or replaces; filters apply."""
    emu.qps = 0
    emu.add_job(
        fixtures.make_job(
            "EarlyJobAbCdEfGhIjKlMn0200", DestVersion="2.0.0", UtcCreate="2023-01-01T00:00:00.000Z"
        )
    )
    added = emu.add_firmware(
        {
            "FirmwareId": "NewFwAbCdEfGhIjKlMnOp0100",
            "FirmwareName": "sensor <b>fw</b>",
            "ProductKey": "a1Sensor0001",
            "DestVersion": "3.0.0",
            "SrcVersion": "2.9.0",
            "Type": 1,
            "UtcCreate": "2025-01-01T00:00:00.000Z",
        }
    )
    assert set(added) == FIRMWARE_FIELDS
    every = firmware_rows(await call(client, emu, "ListOTAFirmware"))
    assert [f["FirmwareId"] for f in every] == [
        "NewFwAbCdEfGhIjKlMnOp0100",
        MAKE_JOB_FIRMWARE,
        SPEC_FIRMWARE,
    ]
    assert every[0] == added
    assert (every[1]["DestVersion"], every[1]["UtcCreate"]) == (
        "2.0.0",
        "2023-01-01T00:00:00.000Z",
    )

    by_product = await call(client, emu, "ListOTAFirmware", ProductKey="a1Sensor0001")
    assert [f["FirmwareId"] for f in firmware_rows(by_product)] == ["NewFwAbCdEfGhIjKlMnOp0100"]
    by_version = await call(
        client, emu, "ListOTAFirmware", ProductKey="a1Gw7Tk9Lmp", DestVersion="2.0.0"
    )
    assert [f["FirmwareId"] for f in firmware_rows(by_version)] == [MAKE_JOB_FIRMWARE]
    nothing = await call(client, emu, "ListOTAFirmware", DestVersion="9.9.9")
    assert (nothing["Total"], nothing["PageCount"], firmware_rows(nothing)) == (0, 0, [])

    second = await call(client, emu, "ListOTAFirmware", PageSize="2", CurrentPage="2")
    assert (second["Total"], second["PageCount"], second["CurrentPage"]) == (3, 2, 2)
    assert [f["FirmwareId"] for f in firmware_rows(second)] == [SPEC_FIRMWARE]

    emu.add_firmware({"FirmwareId": SPEC_FIRMWARE, "FirmwareName": "renamed"})
    names = {f["FirmwareId"]: f["FirmwareName"] for f in emu.firmwares()}
    assert names[SPEC_FIRMWARE] == "renamed" and len(names) == 3


@pytest.mark.parametrize(
    ("action", "required"),
    [
        ("ListOTAFirmware", {}),
        ("ListOTAJobByFirmware", {"FirmwareId": MAKE_JOB_FIRMWARE}),
        (
            "ListOTAJobByDevice",
            {"FirmwareId": SPEC_FIRMWARE, "ProductKey": "a19mzPZ****", "DeviceName": "dev-000000"},
        ),
    ],
)
@pytest.mark.parametrize(
    "paging",
    [{"PageSize": "0"}, {"PageSize": "101"}, {"PageSize": "ten"}, {"CurrentPage": "0"}],
)
async def test_list_actions_reject_bad_paging(emu, client, action, required, paging):
    """PageSize outside 1..100 or CurrentPage < 1 is iot.common.InvalidPageParams."""
    body = await call(client, emu, action, **required, **paging)
    assert_business_error(body, "iot.common.InvalidPageParams")
    assert "Total" not in body
    ok = await call(client, emu, action, **required, PageSize="100")
    assert ok["Success"] is True and ok["PageSize"] == 100


async def test_list_firmware_instance_scoping(emu, client):
    """An instance sees its jobs' firmwares and its added ones; unscoped requests, the rest."""
    emu.add_job(
        fixtures.make_job("InstJobAbCdEfGhIjKlMn0200", FirmwareId="InstFwAbCdEfGhIjKlMnO0100"),
        instance_id=INSTANCE,
    )
    emu.add_firmware({"FirmwareId": "OtherFwAbCdEfGhIjKlMn0100"}, instance_id="iot-cn-fwonly")
    scoped = await call(client, emu, "ListOTAFirmware", IotInstanceId=INSTANCE)
    assert [f["FirmwareId"] for f in firmware_rows(scoped)] == ["InstFwAbCdEfGhIjKlMnO0100"]
    unscoped = firmware_rows(await call(client, emu, "ListOTAFirmware"))
    assert {f["FirmwareId"] for f in unscoped} == {MAKE_JOB_FIRMWARE, SPEC_FIRMWARE}
    fw_only = await call(client, emu, "ListOTAFirmware", IotInstanceId="iot-cn-fwonly")
    assert [f["FirmwareId"] for f in firmware_rows(fw_only)] == ["OtherFwAbCdEfGhIjKlMn0100"]
    unknown = await call(client, emu, "ListOTAFirmware", IotInstanceId="iot-cn-unknown")
    assert_business_error(unknown, "iot.system.InstanceNotFound")
    # An instance known only from a firmware is known to QueryOTAJob too.
    url, headers = v3_request(emu.base_url, {"JobId": EXAMPLE, "IotInstanceId": "iot-cn-fwonly"})
    assert (await client.post(url, headers=headers)).json()["Code"] == "iot.ota.JobNotFound"


async def test_list_jobs_by_firmware_newest_first(emu, client):
    """ListOTAJobByFirmware pages the firmware's jobs newest UtcCreate first, with their fields."""
    emu.qps = 0
    emu.add_job(
        fixtures.make_job("NewestJobAbCdEfGhIjKl0200", UtcCreate="2025-02-01T00:00:00.000Z")
    )
    expected = [j for j, job in emu.jobs.items() if job["FirmwareId"] == MAKE_JOB_FIRMWARE]
    body = await call(client, emu, "ListOTAJobByFirmware", FirmwareId=MAKE_JOB_FIRMWARE)
    assert (body["Total"], body["PageCount"], body["CurrentPage"]) == (len(expected), 1, 1)
    found = job_rows(body)
    # Ties on UtcCreate keep the order the jobs were added.
    assert [r["JobId"] for r in found] == ["NewestJobAbCdEfGhIjKl0200", *expected[:-1]]
    by_id = {r["JobId"]: r for r in found}
    for job_id, row in by_id.items():
        job = emu.jobs[job_id]
        assert set(row) <= JOB_INFO_FIELDS
        assert row == {k: job[k] for k in JOB_INFO_FIELDS if k in job}
    assert "UtcStartTime" not in by_id[fixtures.PLANNED_JOB_ID]
    assert by_id[fixtures.COMPLETED_JOB_ID]["UtcEndTime"]
    assert "Tags" not in by_id[fixtures.VERIFY_JOB_ID]
    assert by_id[fixtures.GRAY_JOB_ID]["Tags"] == {
        "OtaTagDTO": [{"Key": "env", "Value": "beta"}, {"Key": "region", "Value": "ap-northeast-1"}]
    }

    page = await call(
        client, emu, "ListOTAJobByFirmware", FirmwareId=MAKE_JOB_FIRMWARE, PageSize="3"
    )
    assert (page["PageCount"], len(job_rows(page))) == (math.ceil(len(expected) / 3), 3)
    spec = await call(client, emu, "ListOTAJobByFirmware", FirmwareId=SPEC_FIRMWARE)
    assert {r["JobId"] for r in job_rows(spec)} == {EXAMPLE, fixtures.EXAMPLE_JOB_ID_UNMASKED}
    none = await call(client, emu, "ListOTAJobByFirmware", FirmwareId="NoSuchFirmware0100")
    assert (none["Success"], none["Total"], job_rows(none)) == (True, 0, [])
    missing = await api(client, emu, "ListOTAJobByFirmware")
    assert '"FirmwareId"' in assert_gateway_error(missing, 400, "MissingParameter")["Message"]


async def test_list_jobs_by_firmware_instance_scoping(emu, client):
    """Only jobs of the request's scope are listed; an unknown instance is InstanceNotFound."""
    emu.add_job(fixtures.make_job("InstJobAbCdEfGhIjKlMn0200"), instance_id=INSTANCE)
    scoped = await call(
        client, emu, "ListOTAJobByFirmware", FirmwareId=MAKE_JOB_FIRMWARE, IotInstanceId=INSTANCE
    )
    assert [r["JobId"] for r in job_rows(scoped)] == ["InstJobAbCdEfGhIjKlMn0200"]
    unscoped = await call(client, emu, "ListOTAJobByFirmware", FirmwareId=MAKE_JOB_FIRMWARE)
    assert "InstJobAbCdEfGhIjKlMn0200" not in {r["JobId"] for r in job_rows(unscoped)}
    unknown = await call(
        client, emu, "ListOTAJobByFirmware", FirmwareId=MAKE_JOB_FIRMWARE, IotInstanceId="iot-x"
    )
    assert_business_error(unknown, "iot.system.InstanceNotFound")


async def test_list_jobs_by_device(emu, client):
    """ListOTAJobByDevice lists the firmware's jobs of that product with a task for the device."""
    emu.qps = 0
    device = {"FirmwareId": SPEC_FIRMWARE, "ProductKey": "a19mzPZ****"}
    body = await call(client, emu, "ListOTAJobByDevice", DeviceName="dev-000000", **device)
    assert body["Success"] is True
    assert {r["JobId"] for r in job_rows(body)} == {EXAMPLE, fixtures.EXAMPLE_JOB_ID_UNMASKED}
    assert set(job_rows(body)[0]) <= JOB_INFO_FIELDS

    emu.add_task(EXAMPLE, device_name="lab-gw <01>", status="FAILED")
    hand = await call(client, emu, "ListOTAJobByDevice", DeviceName="lab-gw <01>", **device)
    assert [r["JobId"] for r in job_rows(hand)] == [EXAMPLE]
    assert (hand["Total"], hand["PageCount"]) == (1, 1)
    beyond = await call(client, emu, "ListOTAJobByDevice", DeviceName="dev-000999", **device)
    assert (beyond["Total"], job_rows(beyond)) == (0, [])
    other_product = await call(
        client,
        emu,
        "ListOTAJobByDevice",
        DeviceName="dev-000000",
        FirmwareId=SPEC_FIRMWARE,
        ProductKey="a1Gw7Tk9Lmp",
    )
    assert other_product["Total"] == 0
    gw = await call(
        client,
        emu,
        "ListOTAJobByDevice",
        DeviceName="dev-000015",
        FirmwareId=MAKE_JOB_FIRMWARE,
        ProductKey="a1Gw7Tk9Lmp",
    )
    # COMPLETED (20 tasks) is the only gateway job with a device dev-000015 (CANCELED: 12).
    assert [r["JobId"] for r in job_rows(gw)] == [fixtures.COMPLETED_JOB_ID]


@pytest.mark.parametrize("left_out", ["ProductKey", "DeviceName", "FirmwareId"])
async def test_list_jobs_by_device_requires_its_parameters(emu, client, left_out):
    """ProductKey, DeviceName and FirmwareId are each required (MissingParameter)."""
    params = {"ProductKey": "a19mzPZ****", "DeviceName": "dev-000000", "FirmwareId": SPEC_FIRMWARE}
    del params[left_out]
    response = await api(client, emu, "ListOTAJobByDevice", **params)
    assert f'"{left_out}"' in assert_gateway_error(response, 400, "MissingParameter")["Message"]


async def test_list_jobs_by_device_instance_scoping(emu, client):
    """An instance's jobs show only with its IotInstanceId."""
    emu.add_job(fixtures.make_job("InstJobAbCdEfGhIjKlMn0200"), instance_id=INSTANCE)
    device = {"FirmwareId": MAKE_JOB_FIRMWARE, "ProductKey": "a1Gw7Tk9Lmp"}
    scoped = await call(
        client, emu, "ListOTAJobByDevice", DeviceName="dev-000000", IotInstanceId=INSTANCE, **device
    )
    assert [r["JobId"] for r in job_rows(scoped)] == ["InstJobAbCdEfGhIjKlMn0200"]
    unscoped = await call(client, emu, "ListOTAJobByDevice", DeviceName="dev-000000", **device)
    assert "InstJobAbCdEfGhIjKlMn0200" not in {r["JobId"] for r in job_rows(unscoped)}
    assert unscoped["Total"] > 0
    unknown = await call(
        client, emu, "ListOTAJobByDevice", DeviceName="dev-000000", IotInstanceId="x", **device
    )
    assert_business_error(unknown, "iot.system.InstanceNotFound")


async def test_cancel_strategy_only_for_dynamic_jobs(emu, client):
    """CancelOTAStrategyByJob records a DYNAMIC job; a STATIC one is iot.ota.JobNotDynamic."""
    ok = await call(client, emu, "CancelOTAStrategyByJob", JobId=fixtures.GRAY_JOB_ID)
    assert_write_ok(ok)
    assert emu.canceled_strategies == {fixtures.GRAY_JOB_ID}
    static = await call(client, emu, "CancelOTAStrategyByJob", JobId=EXAMPLE)
    assert_business_error(static, "iot.ota.JobNotDynamic")
    assert emu.canceled_strategies == {fixtures.GRAY_JOB_ID}
    unknown = await call(client, emu, "CancelOTAStrategyByJob", JobId="NoSuchJobAbCdEfGh0200")
    assert_business_error(unknown, "iot.ota.JobNotFound")
    missing = await api(client, emu, "CancelOTAStrategyByJob")
    assert '"JobId"' in assert_gateway_error(missing, 400, "MissingParameter")["Message"]


async def test_cancel_strategy_instance_scoping(emu, client):
    """CancelOTAStrategyByJob scopes its JobId like QueryOTAJob."""
    job_id = "InstDynAbCdEfGhIjKlMn0200"
    emu.add_job(fixtures.make_job(job_id, SelectionType="DYNAMIC"), instance_id=INSTANCE)
    wrong = await call(client, emu, "CancelOTAStrategyByJob", JobId=job_id)
    assert_business_error(wrong, "iot.system.InstanceNotFound")
    assert emu.canceled_strategies == set()
    ok = await call(client, emu, "CancelOTAStrategyByJob", JobId=job_id, IotInstanceId=INSTANCE)
    assert_write_ok(ok)
    assert emu.canceled_strategies == {job_id}


async def test_cancel_tasks_moves_the_flagged_statuses(emu, client):
    """Each Cancel*Task flag moves its status to CANCELED, stamped and described."""
    emu.qps = 0  # task_totals makes seven calls per reading
    emu.clock = clock = FakeClock()
    counts = {s: 3 for s in fixtures.TASK_STATUSES}
    emu.set_tasks(EXAMPLE, counts)
    flags = {"CancelQueuedTask": "true", "CancelInProgressTask": "TRUE"}
    body = await call(client, emu, "CancelOTATaskByJob", JobId=EXAMPLE, **flags)
    assert_write_ok(body)
    assert await task_totals(client, emu, EXAMPLE) == {
        **counts,
        "QUEUED": 0,
        "IN_PROGRESS": 0,
        "CANCELED": 9,
    }
    canceled = rows(await list_tasks(client, emu, TaskStatus="CANCELED"))
    by_device = {r["DeviceName"]: r for r in canceled}
    moved = [by_device[f"dev-{i:06d}"] for i in (3, 4, 5, 9, 10, 11)]  # QUEUED, IN_PROGRESS
    assert {(r["TaskDesc"], r["UtcModified"], r["Progress"]) for r in moved} == {
        ("canceled by user", utc_text(clock.now), "0")
    }
    assert [r["DeviceName"] for r in canceled] == sorted(by_device)  # still in TaskId order

    more = {
        "CancelNotifiedTask": "true",
        "CancelUnconfirmedTask": "true",
        "CancelQueuedTask": "false",
    }
    assert_write_ok(await call(client, emu, "CancelOTATaskByJob", JobId=EXAMPLE, **more))
    totals = await task_totals(client, emu, EXAMPLE)
    assert (totals["CONFIRM"], totals["NOTIFIED"], totals["CANCELED"]) == (0, 0, 15)
    assert (totals["SUCCEEDED"], totals["FAILED"]) == (3, 3)
    assert emu.jobs[EXAMPLE]["JobStatus"] == "IN_PROGRESS"


@pytest.mark.parametrize(
    "flags",
    [
        {},
        {name: "false" for name in ALL_CANCEL_FLAGS},
        {"CancelQueuedTask": "yes"},
        {"CancelQueuedTask": "true", "CancelNotifiedTask": "1"},
    ],
)
async def test_cancel_tasks_needs_a_true_flag(emu, client, flags):
    """No flag true, or a flag not true/false, is iot.check.InvalidFormattedParameter."""
    before = emu.task_counts(EXAMPLE)
    body = await call(client, emu, "CancelOTATaskByJob", JobId=EXAMPLE, **flags)
    assert_business_error(body, "iot.check.InvalidFormattedParameter")
    assert emu.task_counts(EXAMPLE) == before


async def test_cancel_scheduled_cancels_a_planned_job(emu, client):
    """CancelScheduledTask cancels a PLANNED job and its QUEUED/CONFIRM tasks; else no effect."""
    emu.clock = clock = FakeClock()
    emu.set_tasks(fixtures.PLANNED_JOB_ID, {"CONFIRM": 2, "QUEUED": 3, "SUCCEEDED": 1})
    body = await call(
        client, emu, "CancelOTATaskByJob", JobId=fixtures.PLANNED_JOB_ID, CancelScheduledTask="true"
    )
    assert_write_ok(body)
    job = (await query_job(client, emu, fixtures.PLANNED_JOB_ID)).json()["Data"]
    assert job["JobStatus"] == "CANCELED"
    assert job["UtcEndTime"] == job["UtcModified"] == utc_text(clock.now)
    assert emu.task_counts(fixtures.PLANNED_JOB_ID) == {
        **{s: 0 for s in fixtures.TASK_STATUSES},
        "SUCCEEDED": 1,
        "CANCELED": 5,
    }
    assert emu.task_status_of(fixtures.PLANNED_JOB_ID, "dev-000000") == "CANCELED"

    before = emu.task_counts(EXAMPLE)
    running = await call(
        client, emu, "CancelOTATaskByJob", JobId=EXAMPLE, CancelScheduledTask="true"
    )
    assert_write_ok(running)
    assert emu.task_counts(EXAMPLE) == before
    assert emu.jobs[EXAMPLE]["JobStatus"] == "IN_PROGRESS"


async def test_cancel_tasks_unknown_job_missing_id_and_instance(emu, client):
    """CancelOTATaskByJob: JobId required, unknown is JobNotFound, scoped like QueryOTAJob."""
    flag = {"CancelQueuedTask": "true"}
    missing = await api(client, emu, "CancelOTATaskByJob", **flag)
    assert '"JobId"' in assert_gateway_error(missing, 400, "MissingParameter")["Message"]
    unknown = await call(client, emu, "CancelOTATaskByJob", JobId="NoSuchJobAbCdEfGh0200", **flag)
    assert_business_error(unknown, "iot.ota.JobNotFound")
    job_id = "InstJobAbCdEfGhIjKlMn0200"
    emu.add_job(fixtures.make_job(job_id), instance_id=INSTANCE)
    wrong = await call(client, emu, "CancelOTATaskByJob", JobId=job_id, **flag)
    assert_business_error(wrong, "iot.system.InstanceNotFound")
    assert emu.task_counts(job_id)["QUEUED"] > 0
    ok = await call(client, emu, "CancelOTATaskByJob", JobId=job_id, IotInstanceId=INSTANCE, **flag)
    assert_write_ok(ok)
    assert emu.task_counts(job_id)["QUEUED"] == 0


async def test_cancel_hundred_thousand_tasks(client):
    """Canceling a 100,000-task job moves every cancelable task; counts and pages stay right."""
    counts = {
        "CONFIRM": 1_000,
        "QUEUED": 30_000,
        "NOTIFIED": 2_000,
        "IN_PROGRESS": 7_000,
        "SUCCEEDED": 55_000,
        "FAILED": 4_000,
        "CANCELED": 1_000,
    }
    async with IotEmulator(qps=0) as emu:
        emu.set_tasks(EXAMPLE, counts)
        emu.add_task(EXAMPLE, device_name="hand-made", status="QUEUED", src_version="0.1")
        flags = {name: "true" for name in ALL_CANCEL_FLAGS}
        assert_write_ok(await call(client, emu, "CancelOTATaskByJob", JobId=EXAMPLE, **flags))
        expected = {
            **{s: 0 for s in fixtures.TASK_STATUSES},
            "SUCCEEDED": 55_000,
            "FAILED": 4_000,
            "CANCELED": 1_000 + 1_000 + 30_000 + 2_000 + 7_000 + 1,
        }
        assert await task_totals(client, emu, EXAMPLE) == expected
        last = await list_tasks(
            client, emu, TaskStatus="CANCELED", PageSize="100", CurrentPage="411"
        )
        assert [r["DeviceName"] for r in rows(last)] == ["hand-made"]
        assert (rows(last)[0]["TaskDesc"], rows(last)[0]["SrcVersion"]) == (
            "canceled by user",
            "0.1",
        )
        ids = [
            r["TaskId"]
            for r in rows(await list_tasks(client, emu, TaskStatus="CANCELED", PageSize="100"))
        ]
        assert ids == sorted(ids)
        # Laid out in TASK_STATUSES order: dev-000000 was CONFIRM, dev-095000 the first FAILED.
        assert emu.task_status_of(EXAMPLE, "dev-000000") == "CANCELED"
        assert emu.task_status_of(EXAMPLE, "dev-095000") == "FAILED"


async def test_reupgrade_moves_failed_tasks_back_to_queued(emu, client):
    """ReupgradeOTATask queues FAILED/CANCELED tasks again; ListOTATaskByJob counts follow."""
    emu.qps = 0  # task_totals makes seven calls per reading
    emu.clock = clock = FakeClock()
    job_id = fixtures.HOSTILE_JOB_ID  # NeedConfirm false
    emu.set_tasks(job_id, {"SUCCEEDED": 2, "FAILED": 3, "CANCELED": 2})
    failed = rows(await list_tasks(client, emu, job_id, TaskStatus="FAILED"))
    canceled = rows(await list_tasks(client, emu, job_id, TaskStatus="CANCELED"))
    chosen = [failed[0]["TaskId"], failed[2]["TaskId"], canceled[1]["TaskId"]]
    clock.now += 60
    ids = {f"TaskId.{n}": task_id for n, task_id in enumerate(chosen, 1)}
    body = await call(client, emu, "ReupgradeOTATask", JobId=job_id, **ids)
    assert_write_ok(body)
    assert await task_totals(client, emu, job_id) == {
        **{s: 0 for s in fixtures.TASK_STATUSES},
        "SUCCEEDED": 2,
        "FAILED": 1,
        "CANCELED": 1,
        "QUEUED": 3,
    }
    queued = rows(await list_tasks(client, emu, job_id, TaskStatus="QUEUED"))
    assert [r["TaskId"] for r in queued] == sorted(chosen)
    assert {(r["TaskDesc"], r["UtcModified"], r["Progress"]) for r in queued} == {
        ("", utc_text(clock.now), "0")
    }
    assert emu.task_status_of(job_id, failed[1]["DeviceName"]) == "FAILED"

    # Canceled by the API, then re-upgraded: TaskDesc "canceled by user" is cleared.
    flag = {"CancelQueuedTask": "true"}
    assert_write_ok(await call(client, emu, "CancelOTATaskByJob", JobId=job_id, **flag))
    again = await call(client, emu, "ReupgradeOTATask", JobId=job_id, **{"TaskId.1": chosen[0]})
    assert_write_ok(again)
    [row] = rows(await list_tasks(client, emu, job_id, TaskStatus="QUEUED"))
    assert (row["TaskId"], row["TaskDesc"]) == (chosen[0], "")


async def test_reupgrade_of_a_confirm_job_needs_confirmation_again(emu, client):
    """With NeedConfirm true (the spec example), re-upgraded tasks go to CONFIRM."""
    assert fixtures.SPEC_EXAMPLE["NeedConfirm"] is True
    [task] = rows(await list_tasks(client, emu, TaskStatus="FAILED", PageSize="1"))
    before = emu.task_counts(EXAMPLE)
    body = await call(
        client, emu, "ReupgradeOTATask", JobId=EXAMPLE, **{"TaskId.1": task["TaskId"]}
    )
    assert_write_ok(body)
    assert emu.task_status_of(EXAMPLE, task["DeviceName"]) == "CONFIRM"
    after = emu.task_counts(EXAMPLE)
    assert (after["FAILED"], after["CONFIRM"]) == (before["FAILED"] - 1, before["CONFIRM"] + 1)


async def test_reupgrade_task_id_count_and_status_errors(emu, client):
    """0 or 11 TaskIds: InvalidFormattedParameter; a task not FAILED/CANCELED or not in the
    job: iot.ota.TaskStatusError; the call is all or nothing."""
    emu.qps = 0
    job_id = fixtures.HOSTILE_JOB_ID
    emu.set_tasks(job_id, {"SUCCEEDED": 1, "FAILED": 12})
    failed = [
        r["TaskId"]
        for r in rows(await list_tasks(client, emu, job_id, TaskStatus="FAILED", PageSize="20"))
    ]
    [succeeded] = [
        r["TaskId"] for r in rows(await list_tasks(client, emu, job_id, TaskStatus="SUCCEEDED"))
    ]

    async def reupgrade(*task_ids: str, job: str = job_id) -> dict[str, Any]:
        ids = {f"TaskId.{n}": task_id for n, task_id in enumerate(task_ids, 1)}
        return await call(client, emu, "ReupgradeOTATask", JobId=job, **ids)

    assert_business_error(await reupgrade(), "iot.check.InvalidFormattedParameter")
    assert_business_error(await reupgrade(*failed[:11]), "iot.check.InvalidFormattedParameter")
    assert_business_error(await reupgrade(failed[0], succeeded), "iot.ota.TaskStatusError")
    [example_task] = rows(await list_tasks(client, emu, TaskStatus="FAILED", PageSize="1"))
    assert_business_error(
        await reupgrade(failed[0], example_task["TaskId"]), "iot.ota.TaskStatusError"
    )
    assert_business_error(await reupgrade("not-a-task-id"), "iot.ota.TaskStatusError")
    beyond = failed[-1][:-8] + "00000099"  # the job's stem, an index it does not have
    assert_business_error(await reupgrade(beyond), "iot.ota.TaskStatusError")
    assert emu.task_counts(job_id)["FAILED"] == 12  # nothing moved

    assert_write_ok(await reupgrade(*failed[:10]))
    assert emu.task_counts(job_id)["QUEUED"] == 10
    assert_business_error(await reupgrade(failed[0]), "iot.ota.TaskStatusError")  # now QUEUED
    missing = await api(client, emu, "ReupgradeOTATask", **{"TaskId.1": failed[10]})
    assert '"JobId"' in assert_gateway_error(missing, 400, "MissingParameter")["Message"]


async def test_reupgrade_instance_scoping(emu, client):
    """ReupgradeOTATask scopes its JobId like QueryOTAJob."""
    job_id = "InstJobAbCdEfGhIjKlMn0200"
    emu.add_job(fixtures.make_job(job_id), instance_id=INSTANCE)
    [task] = rows(
        await list_tasks(client, emu, job_id, TaskStatus="FAILED", IotInstanceId=INSTANCE)
    )
    ids = {"TaskId.1": task["TaskId"]}
    wrong = await call(client, emu, "ReupgradeOTATask", JobId=job_id, **ids)
    assert_business_error(wrong, "iot.system.InstanceNotFound")
    other = await call(
        client, emu, "ReupgradeOTATask", JobId=job_id, IotInstanceId="iot-cn-unknown", **ids
    )
    assert_business_error(other, "iot.system.InstanceNotFound")
    assert emu.task_status_of(job_id, task["DeviceName"]) == "FAILED"
    ok = await call(client, emu, "ReupgradeOTATask", JobId=job_id, IotInstanceId=INSTANCE, **ids)
    assert_write_ok(ok)
    assert emu.task_status_of(job_id, task["DeviceName"]) == "QUEUED"


async def test_task_status_of_control(emu):
    """task_status_of reads one device's status; KeyError for an unknown job or device."""
    emu.set_tasks(EXAMPLE, {"QUEUED": 1, "FAILED": 1})
    assert emu.task_status_of(EXAMPLE, "dev-000001") == "FAILED"
    with pytest.raises(KeyError):
        emu.task_status_of(EXAMPLE, "dev-000002")
    with pytest.raises(KeyError):
        emu.task_status_of("NoSuchJob", "dev-000000")


@pytest.mark.parametrize(("action", "quota"), [("CancelOTATaskByJob", 5), ("ReupgradeOTATask", 20)])
async def test_write_actions_have_fixed_quotas(emu, client, action, quota):
    """CancelOTATaskByJob allows 5 calls a second and ReupgradeOTATask 20, whatever qps says;
    a business error still takes its slot (the call ran)."""
    emu.qps = 0
    responses = await asyncio.gather(
        *(api(client, emu, action, JobId=EXAMPLE) for _ in range(quota + 1))
    )
    assert sorted(r.status_code for r in responses) == [200] * quota + [400]
    [throttled] = [r for r in responses if r.status_code == 400]
    assert_gateway_error(throttled, 400, "Throttling.User")
    assert emu.count(action, code="iot.check.InvalidFormattedParameter") == quota


async def test_new_list_actions_follow_qps(emu, client):
    """ListOTAFirmware and the job lists take the qps setting, each in its own window."""
    emu.qps = 1
    assert (await call(client, emu, "ListOTAFirmware"))["Success"] is True
    assert_gateway_error(await api(client, emu, "ListOTAFirmware"), 400, "Throttling.User")
    by_fw = await call(client, emu, "ListOTAJobByFirmware", FirmwareId=SPEC_FIRMWARE)
    assert by_fw["Success"] is True


async def test_fail_next_applies_to_write_actions(emu, client):
    """A scripted failure for CancelOTATaskByJob answers for it and changes nothing."""
    emu.fail_next("internal", action="CancelOTATaskByJob")
    before = emu.task_counts(EXAMPLE)
    flag = {"CancelQueuedTask": "true"}
    response = await api(client, emu, "CancelOTATaskByJob", JobId=EXAMPLE, **flag)
    assert_gateway_error(response, 500, "InternalError")
    assert emu.task_counts(EXAMPLE) == before
    assert_write_ok(await call(client, emu, "CancelOTATaskByJob", JobId=EXAMPLE, **flag))
    assert emu.task_counts(EXAMPLE)["QUEUED"] == 0
    assert [c.scripted for c in emu.calls] == ["internal", None]
