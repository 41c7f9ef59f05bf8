"""Server-side signature verification, as pure functions over what arrived on the wire.

Behaviours modelled, one a line, each with its source (legend below the list):

- ACS3-HMAC-SHA256 Authorization header -> V3; Signature query parameter -> V2 [ref Signing]
- neither: 400 MissingParameter naming Signature [ref Errors]
- V3 CanonicalRequest, StringToSign, hex HMAC-SHA256 rebuilt from the wire [V3; ref Signing]
- V3: each common header present (host, x-acs-*) must be signed, else IncompleteSignature [V3]
- V3 payload hash: our SHA-256 of the body received, = x-acs-content-sha256 [V3; ref Signing]
- V2 common parameters present, else 400 MissingParameter [V2; ref Signing]
- V2 SignatureMethod HMAC-SHA1 and SignatureVersion 1.0 only, else IncompleteSignature [V2]
- V2 StringToSign METHOD&%2F&encode(query), Base64 HMAC-SHA1 keyed secret + "&" [V2; ref Signing]
- query percent-decoded from the raw string, '+' as a space (Alibaba's SDK sends it) [V2; SDK]
- canonical query re-encoded RFC 3986 (%20, %2A, %2F, '~' kept), sorted by name [V2; V3]
- timestamp yyyy-MM-ddTHH:mm:ssZ, else InvalidTimeStamp.Format [V3 x-acs-date; V2 Timestamp]
- timestamp over 15 minutes off the server clock: 400 InvalidTimeStamp.Expired [ref Errors]
- mismatch: 400 SignatureDoesNotMatch, Message ending in the server StringToSign [ref Errors]
- unknown AccessKeyId: 404 InvalidAccessKeyId.NotFound [ref Errors, code only]
- STS token not the one issued for the key: 400 InvalidSecurityToken.* [ref Errors, family only]
- nonce replay: SignatureNonceUsed, kept by gateway.py from .nonce and .timestamp [ref Errors; V2]

Legend: [ref X] is section X of the team's reference notes, alibaba-iot-ota.md; [SDK] is
Alibaba's Python SDK (Tea compose_url: the query sent with urlencode, signed with %20);
[V3] is Alibaba's "Request syntax and signature method V3",
https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature ;
[V2] is Alibaba's RPC "Signature mechanism", https://help.aliyun.com/document_detail/28839.html
(English: https://www.alibabacloud.com/help/doc-detail/50286.html).

Not from documentation (the emulator's choices): HTTP statuses the reference does not give,
the InvalidTimeStamp.Format and InvalidSecurityToken.Malformed / .MismatchWithAccessKey
sub-codes, every Message text, accepting an upper-case hex V3 Signature, and refusing
Format=XML (which the real gateway answers in XML) after the signature checks, because the
emulator only speaks JSON. Reading a raw '+' as a literal plus is a choice too: the docs
only say the signed form writes a space as %20, and Alibaba's own Python SDK (Tea
compose_url, urlencode) sends a space as '+', so the real gateway may well read '+' as a
space; see gateway_signing.percent_decode.

The computation is bot.emulator.gateway_signing, written from the docs; nothing here uses
the client's signer, so a slip on either side shows as SignatureDoesNotMatch exactly as it
would against the real gateway. Nothing here keeps state.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.emulator.gateway_signing import (
    V3_ALGORITHM,
    canonical_headers,
    canonical_query,
    canonical_uri,
    parse_query,
    parse_timestamp,
    sha256_hex,
    text_params,
    v2_signature,
    v2_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)

API_VERSION = "2018-01-20"
# The gateway's tolerance for the request timestamp (ref "Errors": InvalidTimeStamp.Expired,
# 15-minute window); a nonce is remembered for as long as its request could still verify.
WINDOW_SECONDS = 15 * 60
# The V3 common request headers; each one present must be in SignedHeaders (V3 doc).
V3_REQUIRED_HEADERS = (
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
)
V3_TOKEN_HEADER = "x-acs-security-token"
# The V2 common parameters (V2 doc; ref "V2"). SecurityToken is optional (STS only).
V2_REQUIRED_PARAMS = (
    "AccessKeyId",
    "Action",
    "Format",
    "Version",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
    "Signature",
)
SIGNATURE_MISMATCH = (
    "Specified signature is not matched with our calculation. server string to sign is:"
)


class GatewayError(Exception):
    """An error the API gateway itself answers (HTTP 4xx/5xx, ``Message`` not ``ErrorMessage``)."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def missing(name: str) -> GatewayError:
    return GatewayError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request '
        "is not supplied.",
    )


def incomplete(detail: str) -> GatewayError:
    return GatewayError(
        400,
        "IncompleteSignature",
        f"The request signature does not conform to Aliyun standards. {detail}",
    )


@dataclass(frozen=True)
class WireRequest:
    """A request exactly as received: ``raw_query`` is the undecoded query string."""

    method: str
    raw_query: str
    headers: Mapping[str, str]
    body: bytes = b""
    path: str = "/"


@dataclass(frozen=True)
class Described:
    """What a request claims to be, before any check (for the call log)."""

    signature_version: str | None
    action: str
    access_key_id: str | None
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verified:
    signature_version: str
    access_key_id: str
    action: str
    version: str
    nonce: str
    params: dict[str, str]
    security_token: str | None
    timestamp: float  # the signed x-acs-date / Timestamp, seconds since the epoch


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names; a repeated header's values trimmed, sorted and joined by ','."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers.items():
        grouped.setdefault(name.lower(), []).append(str(value).strip())
    return {name: ",".join(sorted(values)) for name, values in grouped.items()}


def parse_authorization(value: str) -> dict[str, str] | None:
    """``ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..`` -> its fields."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme != V3_ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    return fields


def describe(req: WireRequest) -> Described:
    """V3 if an ACS3 Authorization header is present, V2 if a Signature parameter is."""
    params = text_params(parse_query(req.raw_query))
    headers = lower_headers(req.headers)
    fields = parse_authorization(headers.get("authorization", ""))
    if fields is not None:
        return Described("v3", headers.get("x-acs-action", ""), fields.get("Credential"), params)
    if "Signature" in params:
        return Described("v2", params.get("Action", ""), params.get("AccessKeyId"), params)
    return Described(None, params.get("Action", ""), params.get("AccessKeyId"), params)


def check_timestamp(value: str, now: float) -> float:
    """The timestamp in seconds, if well formed and within the window around ``now``."""
    try:
        moment = parse_timestamp(value)
    except ValueError:
        raise GatewayError(
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        ) from None
    if abs(moment - now) > WINDOW_SECONDS:
        raise GatewayError(
            400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
        )
    return moment


def lookup_secret(credentials: Mapping[str, str], access_key_id: str) -> str:
    secret = credentials.get(access_key_id)
    if secret is None:
        raise GatewayError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    return secret


def check_security_token(
    sts_tokens: Mapping[str, str], access_key_id: str, token: str | None
) -> None:
    """A token is optional, but one that is sent must be the one issued for this key."""
    if token is None or sts_tokens.get(access_key_id) == token:
        return
    if token in sts_tokens.values():
        raise GatewayError(
            400,
            "InvalidSecurityToken.MismatchWithAccessKey",
            "Specified SecurityToken mismatch with the AccessKey.",
        )
    raise GatewayError(
        400, "InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed."
    )


def mismatch(string_to_sign: str) -> GatewayError:
    return GatewayError(400, "SignatureDoesNotMatch", SIGNATURE_MISMATCH + string_to_sign)


def v3_server_string_to_sign(req: WireRequest, signed_headers: list[str]) -> str:
    """Rebuild the StringToSign from the received path, query, signed headers and body."""
    headers = lower_headers(req.headers)
    block, signed = canonical_headers(headers, signed_headers)
    canonical = v3_canonical_request(
        req.method,
        canonical_uri(req.path),
        canonical_query(parse_query(req.raw_query)),
        block,
        signed,
        sha256_hex(req.body),
    )
    return v3_string_to_sign(canonical)


def v2_server_string_to_sign(req: WireRequest) -> str:
    """Rebuild the V2 StringToSign from the received method and raw query."""
    return v2_string_to_sign(req.method, parse_query(req.raw_query))


def verify_v3(
    req: WireRequest, credentials: Mapping[str, str], sts_tokens: Mapping[str, str], now: float
) -> Verified:
    headers = lower_headers(req.headers)
    fields = parse_authorization(headers.get("authorization", "")) or {}
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(name):
            raise incomplete(f"Authorization has no {name}.")
    for name in V3_REQUIRED_HEADERS:
        if not headers.get(name):
            raise missing(name)
    signed = [h.strip().lower() for h in fields["SignedHeaders"].split(";") if h.strip()]
    token = headers.get(V3_TOKEN_HEADER)
    must_sign = V3_REQUIRED_HEADERS + ((V3_TOKEN_HEADER,) if token is not None else ())
    unsigned = [h for h in must_sign if h not in signed]
    if unsigned:
        raise incomplete(f"SignedHeaders must include {', '.join(unsigned)}.")
    absent = [h for h in signed if h not in headers]
    if absent:
        raise incomplete(f"Signed header {', '.join(absent)} is not in the request.")
    moment = check_timestamp(headers["x-acs-date"], now)
    access_key_id = fields["Credential"]
    secret = lookup_secret(credentials, access_key_id)
    string_to_sign = v3_server_string_to_sign(req, signed)
    expected = v3_signature(secret, string_to_sign)
    # The payload line uses our own hash of the body, so a wrong x-acs-content-sha256 can
    # never verify; the explicit comparison just makes that intent visible.
    body_ok = headers["x-acs-content-sha256"].lower() == sha256_hex(req.body)
    if not body_ok or not hmac.compare_digest(expected, fields["Signature"].lower()):
        raise mismatch(string_to_sign)
    check_security_token(sts_tokens, access_key_id, token)
    return Verified(
        signature_version="v3",
        access_key_id=access_key_id,
        action=headers["x-acs-action"],
        version=headers["x-acs-version"],
        nonce=headers["x-acs-signature-nonce"],
        params=text_params(parse_query(req.raw_query)),
        security_token=token,
        timestamp=moment,
    )


def verify_v2(
    req: WireRequest, credentials: Mapping[str, str], sts_tokens: Mapping[str, str], now: float
) -> Verified:
    params = text_params(parse_query(req.raw_query))
    for name in V2_REQUIRED_PARAMS:
        if not params.get(name):
            raise missing(name)
    if params["SignatureMethod"] != "HMAC-SHA1":
        raise incomplete("SignatureMethod must be HMAC-SHA1.")
    if params["SignatureVersion"] != "1.0":
        raise incomplete("SignatureVersion must be 1.0.")
    moment = check_timestamp(params["Timestamp"], now)
    access_key_id = params["AccessKeyId"]
    secret = lookup_secret(credentials, access_key_id)
    string_to_sign = v2_server_string_to_sign(req)
    if not hmac.compare_digest(v2_signature(secret, string_to_sign), params["Signature"]):
        raise mismatch(string_to_sign)
    token = params.get("SecurityToken")
    check_security_token(sts_tokens, access_key_id, token)
    if params["Format"].upper() != "JSON":
        # The real gateway would answer XML; the emulator only speaks JSON, so say so loudly.
        raise GatewayError(400, "InvalidParameter", "The emulator only supports Format=JSON.")
    return Verified(
        signature_version="v2",
        access_key_id=access_key_id,
        action=params["Action"],
        version=params["Version"],
        nonce=params["SignatureNonce"],
        params=params,
        security_token=token,
        timestamp=moment,
    )


def verify(
    req: WireRequest,
    *,
    credentials: Mapping[str, str],
    sts_tokens: Mapping[str, str],
    now: float,
) -> Verified:
    """Check the request's signature; raise GatewayError as the real gateway would."""
    kind = describe(req).signature_version
    if kind == "v3":
        return verify_v3(req, credentials, sts_tokens, now)
    if kind == "v2":
        return verify_v2(req, credentials, sts_tokens, now)
    if "authorization" in lower_headers(req.headers):
        raise incomplete("Unsupported Authorization scheme.")
    raise missing("Signature")
