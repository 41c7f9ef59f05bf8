"""The emulator's own signature checks: independent of our client's signer, faithful to
Alibaba's published vectors and to Alibaba's official signing library.

Requests here are signed by alibabacloud-openapi-util (test-only dependency) or built by
hand from the published vectors, and put on the wire with the library's own RFC 3986
encoder, so nothing in this file touches bot.iot.signing.
"""

from __future__ import annotations

import ast
import hashlib
import string
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from alibabacloud_openapi_util.client import Client as OfficialUtil
from hypothesis import given, settings
from hypothesis import strategies as st
from Tea.request import TeaRequest

from bot.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, IotEmulator, fixtures
from bot.emulator import gateway_signing as gs
from bot.emulator.verify import (
    API_VERSION,
    SIGNATURE_MISMATCH,
    WINDOW_SECONDS,
    GatewayError,
    WireRequest,
    verify,
)

EMULATOR_DIR = Path(__file__).resolve().parents[1] / "bot" / "emulator"
FORBIDDEN = ("bot.iot.signing", "bot.iot.auth")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
NOW = 1_800_000_000.0  # a fixed server clock for the pure checks
V3_ALGORITHM = "ACS3-HMAC-SHA256"


def utc(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def wire_query(params: dict[str, str]) -> str:
    """The query as sent, encoded by the official library's RFC 3986 encoder."""
    enc = OfficialUtil.get_encode_param
    return "&".join(f"{enc(k)}={enc(v)}" for k, v in params.items())


# --- no client code in the emulator ---------------------------------------------------


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, ``from bot.iot import signing`` giving bot.iot.signing."""
    package = "bot.emulator"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against bot.emulator
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_emulator_modules_never_import_the_client_signer():
    """No file of bot/emulator imports bot.iot.signing or bot.iot.auth, in any spelling."""
    files = sorted(EMULATOR_DIR.glob("*.py"))
    assert {f.name for f in files} >= {"verify.py", "server.py", "gateway_signing.py"}
    for path in files:
        imports = imported_modules(path)
        bad = sorted(m for m in imports if m.startswith(FORBIDDEN))
        assert not bad, f"{path.name} imports {bad}"
        # Whatever the emulator takes from bot.iot must be about data, never signing.
        assert {m for m in imports if m.startswith("bot.iot")} <= {
            "bot.iot",
            "bot.iot.models",
            "bot.iot.models.JOB_STATUSES",
        }, path.name


def test_importing_the_emulator_loads_no_client_signing():
    """In a fresh interpreter, importing the emulator does not load the client's signer."""
    code = (
        "import sys, bot.emulator, bot.emulator.verify, bot.emulator.gateway_signing; "
        f"print(sorted(m for m in sys.modules if m in {FORBIDDEN!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=EMULATOR_DIR.parents[1],
    )
    assert out.stdout.strip() == "[]"


# --- Alibaba's published vectors, computed by the emulator's own functions -------------

V3_VECTOR_HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "x-acs-action": "RunInstances",
    "x-acs-version": "2014-05-26",
    "x-acs-date": "2023-10-26T10:22:32Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": EMPTY_SHA256,
}
V3_VECTOR_QUERY = "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
V3_VECTOR_SIGNATURE = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
V2_VECTOR_PARAMS = {
    "Action": "DescribeRegions",
    "Format": "XML",
    "Version": "2014-05-26",
    "AccessKeyId": "testid",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureVersion": "1.0",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Timestamp": "2016-02-23T12:46:24Z",
}
# The StringToSign printed in Alibaba's RPC signature doc for that request.
V2_VECTOR_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
    "%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z"
    "%26Version%3D2014-05-26"
)
V2_VECTOR_SIGNATURE = "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_v3_published_vector_with_the_emulators_functions():
    """The emulator's V3 chain reproduces the signature in Alibaba's V3 documentation."""
    block, signed = gs.canonical_headers(V3_VECTOR_HEADERS, V3_VECTOR_HEADERS)
    assert signed == (
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    )
    canonical = gs.v3_canonical_request(
        "POST",
        gs.canonical_uri("/"),
        gs.canonical_query(gs.parse_query(V3_VECTOR_QUERY)),
        block,
        signed,
        gs.sha256_hex(b""),
    )
    signature = gs.v3_signature("YourAccessKeySecret", gs.v3_string_to_sign(canonical))
    assert signature == V3_VECTOR_SIGNATURE


def test_v3_published_vector_verifies_end_to_end():
    """The vector's request, as it would arrive, passes the emulator's verify()."""
    authorization = (
        f"{V3_ALGORITHM} Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        f"Signature={V3_VECTOR_SIGNATURE}"
    )
    request = WireRequest(
        "POST", V3_VECTOR_QUERY, {**V3_VECTOR_HEADERS, "Authorization": authorization}
    )
    verified = verify(
        request,
        credentials={"YourAccessKeyId": "YourAccessKeySecret"},
        sts_tokens={},
        now=gs.parse_timestamp("2023-10-26T10:22:32Z"),
    )
    assert (verified.action, verified.version, verified.nonce) == (
        "RunInstances",
        "2014-05-26",
        "3156853299f313e23d1673dc12e1703d",
    )
    assert verified.params["RegionId"] == "cn-shanghai"


def test_v2_published_vector_with_the_emulators_functions():
    """The emulator's V2 chain reproduces the StringToSign and signature of Alibaba's doc."""
    pairs = [(k.encode(), v.encode()) for k, v in V2_VECTOR_PARAMS.items()]
    string_to_sign = gs.v2_string_to_sign("GET", pairs)
    assert string_to_sign == V2_VECTOR_STRING_TO_SIGN
    assert gs.v2_signature("testsecret", string_to_sign) == V2_VECTOR_SIGNATURE


def test_v2_published_vector_verifies_end_to_end():
    """The vector's GET passes the signature checks; only the emulator's JSON-only rule
    (checked after them) refuses its Format=XML. A wrong secret is a mismatch."""
    raw = wire_query({**V2_VECTOR_PARAMS, "Signature": V2_VECTOR_SIGNATURE})
    request = WireRequest("GET", raw, {"host": "ecs.aliyuncs.com"})
    now = gs.parse_timestamp(V2_VECTOR_PARAMS["Timestamp"])
    with pytest.raises(GatewayError) as info:
        verify(request, credentials={"testid": "testsecret"}, sts_tokens={}, now=now)
    assert info.value.code == "InvalidParameter" and "Format=JSON" in info.value.message
    with pytest.raises(GatewayError) as info:
        verify(request, credentials={"testid": "other"}, sts_tokens={}, now=now)
    assert info.value.code == "SignatureDoesNotMatch"
    assert info.value.message == SIGNATURE_MISMATCH + V2_VECTOR_STRING_TO_SIGN


def test_percent_encoding_and_decoding_follow_the_docs():
    """Encode: RFC 3986 over UTF-8 (%20, %2A, %2F, '~' kept, upper-case hex). Decode: %XY in
    either case; '+' is a space (as the official SDK sends it); a '%' without two hex digits
    stays itself."""
    assert gs.percent_encode("a b*c/~d+é") == "a%20b%2Ac%2F~d%2B%C3%A9"
    assert gs.percent_decode("a+b%20c%2a%2B%C3%A9") == "a b c*+é".encode()
    assert gs.percent_decode("100%_%4") == b"100%_%4"
    assert gs.canonical_query(gs.parse_query("b=2&a=1&a=0&c")) == "a=0&a=1&b=2&c="
    assert gs.canonical_uri("") == "/" and gs.canonical_uri("/a%2fb c") == "/a/b%20c"


# --- cross-check: what Alibaba's official library signs, the emulator accepts ---------

# Values that stress encoding: unicode, spaces, '*', '~', '/', '+', '=', '&', '%'.
values = st.text(
    alphabet=st.sampled_from(list(string.ascii_letters + string.digits + " *~/+=&%-_.:"))
    | st.characters(codec="utf-8", exclude_categories=("Cs",)),
    max_size=40,
)
COMMON = {"Action", "Format", "Version", "AccessKeyId", "SignatureMethod", "Signature"}
COMMON |= {"SignatureVersion", "SignatureNonce", "Timestamp", "SecurityToken"}
keys = st.text(alphabet=string.ascii_letters + string.digits + ".", min_size=1, max_size=20).filter(
    lambda k: k not in COMMON
)
params_strategy = st.dictionaries(keys, values, max_size=6)
secrets = st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=1, max_size=40)
tokens = st.none() | st.text(alphabet=string.ascii_letters + string.digits + "/+=", min_size=1)
methods = st.sampled_from(["POST", "GET"])


def official_v3(
    params: dict[str, str],
    secret: str,
    token: str | None,
    *,
    method: str = "POST",
    host: str = "iot.cn-shanghai.aliyuncs.com",
    key: str = "LTAIkey",
    now: float = NOW,
    nonce: str | None = None,
    action: str = "QueryOTAJob",
) -> tuple[str, dict[str, str]]:
    """(raw query, headers) of a V3 request signed by alibabacloud-openapi-util."""
    request = TeaRequest()
    request.method, request.pathname, request.query = method, "/", dict(params)
    request.headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": API_VERSION,
        "x-acs-date": utc(now),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": EMPTY_SHA256,
    }
    if token is not None:
        request.headers["x-acs-security-token"] = token
    authorization = OfficialUtil.get_authorization(request, V3_ALGORITHM, EMPTY_SHA256, key, secret)
    return wire_query(params), {**request.headers, "Authorization": authorization}


def official_v2(
    params: dict[str, str],
    secret: str,
    token: str | None,
    *,
    method: str = "POST",
    key: str = "LTAIkey",
    now: float = NOW,
) -> dict[str, str]:
    """Every query parameter of a V2 request signed by alibabacloud-openapi-util."""
    signed = {
        **params,
        "Action": "QueryOTAJob",
        "Format": "JSON",
        "Version": API_VERSION,
        "AccessKeyId": key,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": utc(now),
    }
    if token is not None:
        signed["SecurityToken"] = token
    signed["Signature"] = OfficialUtil.get_rpcsignature(signed, method, secret)
    return signed


@settings(max_examples=150, deadline=None)
@given(params=params_strategy, secret=secrets, token=tokens, method=methods)
def test_v3_official_signatures_verify(params, secret, token, method):
    """For random parameters, a V3 request signed by Alibaba's library verifies."""
    raw, headers = official_v3(params, secret, token, method=method)
    verified = verify(
        WireRequest(method, raw, headers),
        credentials={"LTAIkey": secret},
        sts_tokens={"LTAIkey": token} if token is not None else {},
        now=NOW,
    )
    assert verified.params == params and verified.security_token == token


@settings(max_examples=150, deadline=None)
@given(params=params_strategy, secret=secrets, token=tokens, method=methods)
def test_v2_official_signatures_verify(params, secret, token, method):
    """For random parameters, a V2 request signed by Alibaba's library verifies."""
    signed = official_v2(params, secret, token, method=method)
    verified = verify(
        WireRequest(method, wire_query(signed), {"host": "iot.cn-shanghai.aliyuncs.com"}),
        credentials={"LTAIkey": secret},
        sts_tokens={"LTAIkey": token} if token is not None else {},
        now=NOW,
    )
    assert {k: v for k, v in verified.params.items() if k not in COMMON} == params


@settings(max_examples=60, deadline=None)
@given(params=params_strategy, secret=secrets)
def test_official_signature_with_a_wrong_secret_never_verifies(params, secret):
    """The check is not vacuous: the same request under another secret is a mismatch."""
    raw, headers = official_v3(params, secret, None)
    with pytest.raises(GatewayError) as info:
        verify(
            WireRequest("POST", raw, headers),
            credentials={"LTAIkey": secret + "x"},
            sts_tokens={},
            now=NOW,
        )
    assert info.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("scheme", ["v3", "v2"])
def test_plus_on_the_wire_is_a_space_and_a_literal_plus_needs_2b(scheme):
    """'+' on the wire reads as a space (Alibaba's SDK sends spaces so and signs %20), so a
    value holding a real plus verifies only when sent as %2B."""
    params = {"JobId": "a b"}
    if scheme == "v3":
        raw, headers = official_v3(params, "s3cret", None)
    else:
        raw, headers = wire_query(official_v2(params, "s3cret", None)), {"host": "h"}
    assert "JobId=a%20b" in raw
    verify(
        WireRequest("POST", raw, headers), credentials={"LTAIkey": "s3cret"}, sts_tokens={}, now=NOW
    )
    plus = raw.replace("JobId=a%20b", "JobId=a+b")
    verify(
        WireRequest("POST", plus, headers),
        credentials={"LTAIkey": "s3cret"},
        sts_tokens={},
        now=NOW,
    )
    if scheme == "v3":
        literal, literal_headers = official_v3({"JobId": "a+b"}, "s3cret", None)
    else:
        literal = wire_query(official_v2({"JobId": "a+b"}, "s3cret", None))
        literal_headers = {"host": "h"}
    assert "JobId=a%2Bb" in literal
    verify(
        WireRequest("POST", literal, literal_headers),
        credentials={"LTAIkey": "s3cret"},
        sts_tokens={},
        now=NOW,
    )
    with pytest.raises(GatewayError) as info:
        verify(
            WireRequest("POST", literal.replace("a%2Bb", "a+b"), literal_headers),
            credentials={"LTAIkey": "s3cret"},
            sts_tokens={},
            now=NOW,
        )
    assert info.value.code == "SignatureDoesNotMatch"


# --- over HTTP: the running emulator ---------------------------------------------------


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


def host_of(base: str) -> str:
    return httpx.URL(base).netloc.decode()


NOTE = "a b+c*~/é&=%41"  # a parameter the action ignores, full of reserved characters


async def test_official_v3_request_over_http(emulator, client):
    """A V3 request signed by Alibaba's library, values with reserved characters, gets 200."""
    params = {"JobId": fixtures.EXAMPLE_JOB_ID, "Note": NOTE}
    raw, headers = official_v3(
        params,
        DEMO_ACCESS_KEY_SECRET,
        None,
        host=host_of(emulator.base_url),
        key=DEMO_ACCESS_KEY_ID,
        now=time.time(),
    )
    response = await client.post(httpx.URL(f"{emulator.base_url}/?{raw}"), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["Data"]["JobId"] == fixtures.EXAMPLE_JOB_ID
    assert emulator.calls[-1].params["Note"] == NOTE


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_official_v2_request_over_http(emulator, client, method):
    """A V2 request signed by Alibaba's library gets 200, with either method."""
    params = {"JobId": fixtures.EXAMPLE_JOB_ID, "Note": NOTE}
    signed = official_v2(
        params, DEMO_ACCESS_KEY_SECRET, None, method=method, key=DEMO_ACCESS_KEY_ID, now=time.time()
    )
    response = await client.request(method, httpx.URL(f"{emulator.base_url}/?{wire_query(signed)}"))
    assert response.status_code == 200, response.text
    assert emulator.calls[-1].signature_version == "v2"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_nonce_is_remembered_while_its_request_could_still_verify(client):
    """A client clock 10 minutes ahead: the signed request stays acceptable until its own
    timestamp + 15 minutes, so a replay 20 minutes after arrival is still SignatureNonceUsed;
    once the timestamp is out of the window, the answer is InvalidTimeStamp.Expired."""
    clock = FakeClock(time.time())
    async with IotEmulator(clock=clock) as emu:
        raw, headers = official_v3(
            {"JobId": fixtures.EXAMPLE_JOB_ID},
            DEMO_ACCESS_KEY_SECRET,
            None,
            host=host_of(emu.base_url),
            key=DEMO_ACCESS_KEY_ID,
            now=clock.now + 10 * 60,
            nonce="replayed-nonce",
        )
        url = httpx.URL(f"{emu.base_url}/?{raw}")
        assert (await client.post(url, headers=headers)).status_code == 200
        clock.now += 20 * 60  # past arrival + WINDOW, still within timestamp + WINDOW
        response = await client.post(url, headers=headers)
        assert (response.status_code, response.json()["Code"]) == (400, "SignatureNonceUsed")
        clock.now += 6 * 60
        response = await client.post(url, headers=headers)
        assert response.json()["Code"] == "InvalidTimeStamp.Expired"
        assert WINDOW_SECONDS == 15 * 60


async def test_quota_throttling_says_when_to_retry(client):
    """A call over the quota is 400 Throttling.User with x-acs-retry-after: the milliseconds
    until the window frees a slot (never 0, never more than the window)."""
    async with IotEmulator(qps=1) as emu:
        answers = []
        for _ in range(2):
            raw, headers = official_v3(
                {"JobId": fixtures.EXAMPLE_JOB_ID},
                DEMO_ACCESS_KEY_SECRET,
                None,
                host=host_of(emu.base_url),
                key=DEMO_ACCESS_KEY_ID,
                now=time.time(),
            )
            answers.append(await client.post(f"{emu.base_url}/?{raw}", headers=headers))
        assert answers[0].status_code == 200 and "x-acs-retry-after" not in answers[0].headers
        throttled = answers[1]
        assert (throttled.status_code, throttled.json()["Code"]) == (400, "Throttling.User")
        assert set(throttled.json()) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
        assert 1 <= int(throttled.headers["x-acs-retry-after"]) <= 1000


@pytest.mark.parametrize("status", [200, 400, 503])
async def test_business_error_body_under_any_status(emulator, client, status):
    """A scripted IoT business error is {RequestId, Success: false, Code, ErrorMessage},
    under HTTP 200 or, as the reference says is also seen, 4xx/5xx."""
    emulator.fail_next("business", status=status)
    raw, headers = official_v3(
        {"JobId": fixtures.EXAMPLE_JOB_ID},
        DEMO_ACCESS_KEY_SECRET,
        None,
        host=host_of(emulator.base_url),
        key=DEMO_ACCESS_KEY_ID,
        now=time.time(),
    )
    response = await client.post(f"{emulator.base_url}/?{raw}", headers=headers)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"RequestId", "Success", "Code", "ErrorMessage"}
    assert body["Success"] is False and body["Code"] == "iot.system.SystemException"
    assert response.headers["x-acs-request-id"] == body["RequestId"]
    assert (emulator.calls[-1].status, emulator.calls[-1].scripted) == (status, "business")


def test_fail_next_options_belong_to_their_kind():
    """status is for business answers, retry_after for throttling: anything else is a typo."""
    emu = IotEmulator()
    with pytest.raises(ValueError):
        emu.fail_next("throttle", status=503)
    with pytest.raises(ValueError):
        emu.fail_next("business", retry_after=1.0)
    with pytest.raises(ValueError):
        emu.fail_next("business", status=700)
