"""Signing: Alibaba's published vectors, and agreement with the official SDK's functions."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import httpx
from alibabacloud_openapi_util.client import Client as OfficialUtil
from hypothesis import given, settings
from hypothesis import strategies as st
from Tea.request import TeaRequest

from bot.iot import signing
from bot.iot.auth import AcsSignatureAuth
from bot.iot.credentials import Credential

V3_VECTOR_QUERY = {
    "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
    "RegionId": "cn-shanghai",
}
NOW = datetime(2026, 11, 26, 3, 4, 5, tzinfo=UTC)


def test_v3_published_vector() -> None:
    """Our V3 chain reproduces the signature in Alibaba's V3 documentation."""
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-version": "2014-05-26",
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-content-sha256": signing.EMPTY_BODY_SHA256,
    }
    canonical = signing.v3_canonical_request(
        "POST", "/", signing.canonical_query(V3_VECTOR_QUERY), headers, signing.EMPTY_BODY_SHA256
    )
    signature = signing.v3_signature("YourAccessKeySecret", signing.v3_string_to_sign(canonical))
    assert signature == "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"


def test_v2_published_vector() -> None:
    """Our V2 chain reproduces the signature in Alibaba's RPC signing documentation."""
    params = {
        "Action": "DescribeRegions",
        "Format": "XML",
        "Version": "2014-05-26",
        "AccessKeyId": "testid",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "Timestamp": "2016-02-23T12:46:24Z",
    }
    string_to_sign = signing.v2_string_to_sign("GET", params)
    assert signing.v2_signature("testsecret", string_to_sign) == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_percent_encoding_follows_rfc3986() -> None:
    """Space is %20 (never '+'), '*' and '/' are encoded, '~' stays, UTF-8 bytes encode."""
    assert signing.percent_encode("a b*c/~d+é") == "a%20b%2Ac%2F~d%2B%C3%A9"


# Values that stress encoding: unicode, spaces, '*', '~', '/', '+', '=', '&'.
values = st.text(
    alphabet=st.sampled_from(list(string.ascii_letters + string.digits + " *~/+=&%-_.:"))
    | st.characters(codec="utf-8"),
    max_size=40,
)
# The API's own parameter names never collide with the common ones the signer adds.
COMMON = {"Action", "Format", "Version", "AccessKeyId", "SignatureMethod", "Signature"}
COMMON |= {"SignatureVersion", "SignatureNonce", "Timestamp", "SecurityToken"}
keys = st.text(alphabet=string.ascii_letters + string.digits + ".", min_size=1, max_size=20).filter(
    lambda k: k not in COMMON
)
params_strategy = st.dictionaries(keys, values, max_size=6)
secrets = st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=1, max_size=40)
tokens = st.none() | st.text(alphabet=string.ascii_letters + string.digits + "/+=", min_size=1)


def _signed(params, secret, token, signature, method="POST") -> httpx.Request:
    url = httpx.URL("https://iot.cn-shanghai.aliyuncs.com/").copy_with(
        query=signing.canonical_query(params).encode() or None
    )
    auth = AcsSignatureAuth(
        Credential("LTAIkey", secret, token),
        action="QueryOTAJob",
        version="2018-01-20",
        signature=signature,
        now=lambda: NOW,
        nonce=lambda: "nonce-1",
    )
    flow = auth.sync_auth_flow(httpx.Request(method, url))
    return next(flow)


@settings(max_examples=150, deadline=None)
@given(params=params_strategy, secret=secrets, token=tokens)
def test_v3_matches_official_sdk(params, secret, token) -> None:
    """For random parameters our V3 Authorization equals alibabacloud-openapi-util's."""
    request = _signed(params, secret, token, "v3")
    official = TeaRequest()
    official.method = "POST"
    official.pathname = "/"
    official.query = dict(signing.parse_query(request.url.query.decode()))
    official.headers = {
        k: v for k, v in request.headers.items() if k == "host" or k.startswith("x-acs-")
    }
    expected = OfficialUtil.get_authorization(
        official, "ACS3-HMAC-SHA256", signing.EMPTY_BODY_SHA256, "LTAIkey", secret
    )
    assert request.headers["authorization"] == expected
    assert dict(signing.parse_query(request.url.query.decode())) == params


@settings(max_examples=150, deadline=None)
@given(params=params_strategy, secret=secrets, token=tokens)
def test_v2_matches_official_sdk(params, secret, token) -> None:
    """For random parameters our V2 Signature equals alibabacloud-openapi-util's."""
    request = _signed(params, secret, token, "v2")
    sent = dict(signing.parse_query(request.url.query.decode()))
    signature = sent.pop("Signature")
    assert signature == OfficialUtil.get_rpcsignature(sent, "POST", secret)
    assert sent["Format"] == "JSON"
    assert sent.get("SecurityToken") == token
    assert {k: v for k, v in sent.items() if k not in COMMON} == params


def test_v3_auth_sets_every_header_and_signs_the_wire_query() -> None:
    """The V3 flow adds the x-acs-* headers, an STS token header, and sends its canonical query."""
    request = _signed({"JobId": "a b*", "IotInstanceId": "iot-1"}, "s3cret", "sts-token", "v3")
    assert request.url.query == b"IotInstanceId=iot-1&JobId=a%20b%2A"
    assert request.headers["x-acs-action"] == "QueryOTAJob"
    assert request.headers["x-acs-version"] == "2018-01-20"
    assert request.headers["x-acs-date"] == "2026-11-26T03:04:05Z"
    assert request.headers["x-acs-signature-nonce"] == "nonce-1"
    assert request.headers["x-acs-content-sha256"] == signing.EMPTY_BODY_SHA256
    assert request.headers["x-acs-security-token"] == "sts-token"
    assert "SignedHeaders=host;x-acs-action;" in request.headers["authorization"]
    assert "s3cret" not in str(request.headers) and "s3cret" not in str(request.url)


def test_v2_auth_puts_signature_in_the_query() -> None:
    """The V2 flow sends common parameters and Signature in the query, no Authorization."""
    request = _signed({"JobId": "J1"}, "s3cret", None, "v2")
    sent = dict(signing.parse_query(request.url.query.decode()))
    assert sent["Action"] == "QueryOTAJob" and sent["Timestamp"] == "2026-11-26T03:04:05Z"
    assert "SecurityToken" not in sent and "authorization" not in request.headers
    assert "s3cret" not in str(request.url)


def test_credential_repr_hides_the_secret() -> None:
    """A Credential printed in a log or traceback shows the key id, never the secret."""
    text = repr(Credential("LTAIkey", "s3cret", "tok3n"))
    assert "LTAIkey" in text and "s3cret" not in text and "tok3n" not in text
