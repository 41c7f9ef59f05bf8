"""Server-side signature verification, as pure functions over what arrived on the wire.

The client side (bot.iot.signing) builds canonical strings from values it chose; here we
rebuild them from the raw bytes received, so an encoding slip on either side shows up as
SignatureDoesNotMatch exactly as it would against the real gateway. Nothing here keeps
state: the nonce-replay check needs memory, so the server does it with ``Verified.nonce``.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.iot.signing import (
    TIMESTAMP_FORMAT,
    V3_ALGORITHM,
    canonical_query,
    parse_query,
    sha256_hex,
    v2_signature,
    v2_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)

API_VERSION = "2018-01-20"
# The gateway's tolerance for both the request timestamp and nonce reuse.
WINDOW_SECONDS = 15 * 60
V3_REQUIRED_HEADERS = (
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
)
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


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names; repeated headers joined by ',' in sorted order, as the SDK signs them."""
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
    params = dict(parse_query(req.raw_query))
    headers = lower_headers(req.headers)
    fields = parse_authorization(headers.get("authorization", ""))
    if fields is not None:
        return Described("v3", headers.get("x-acs-action", ""), fields.get("Credential"), params)
    if "Signature" in params:
        return Described("v2", params.get("Action", ""), params.get("AccessKeyId"), params)
    return Described(None, params.get("Action", ""), params.get("AccessKeyId"), params)


def check_timestamp(value: str, now: float) -> None:
    try:
        moment = datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise GatewayError(
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        ) from None
    if abs(moment.timestamp() - now) > WINDOW_SECONDS:
        raise GatewayError(
            400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
        )


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


def v3_server_string_to_sign(req: WireRequest, signed_headers: list[str]) -> str:
    """Rebuild the StringToSign from the received query, signed headers and body."""
    headers = lower_headers(req.headers)
    signed = {name: headers[name] for name in signed_headers}
    query = canonical_query(parse_query(req.raw_query))
    canonical = v3_canonical_request(req.method, req.path, query, signed, sha256_hex(req.body))
    return v3_string_to_sign(canonical)


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
    token = headers.get("x-acs-security-token")
    must_sign = V3_REQUIRED_HEADERS + (("x-acs-security-token",) if token is not None else ())
    unsigned = [h for h in must_sign if h not in signed]
    if unsigned:
        raise incomplete(f"SignedHeaders must include {', '.join(unsigned)}.")
    absent = [h for h in signed if h not in headers]
    if absent:
        raise incomplete(f"Signed header {', '.join(absent)} is not in the request.")
    check_timestamp(headers["x-acs-date"], now)
    access_key_id = fields["Credential"]
    secret = lookup_secret(credentials, access_key_id)
    string_to_sign = v3_server_string_to_sign(req, signed)
    expected = v3_signature(secret, string_to_sign)
    # The payload line uses our own hash of the body, so a wrong x-acs-content-sha256 can
    # never verify; the explicit comparison just makes that intent visible.
    body_ok = headers["x-acs-content-sha256"].lower() == sha256_hex(req.body)
    if not body_ok or not hmac.compare_digest(expected, fields["Signature"].lower()):
        raise GatewayError(400, "SignatureDoesNotMatch", SIGNATURE_MISMATCH + string_to_sign)
    check_security_token(sts_tokens, access_key_id, token)
    return Verified(
        signature_version="v3",
        access_key_id=access_key_id,
        action=headers["x-acs-action"],
        version=headers["x-acs-version"],
        nonce=headers["x-acs-signature-nonce"],
        params=dict(parse_query(req.raw_query)),
        security_token=token,
    )


def verify_v2(
    req: WireRequest, credentials: Mapping[str, str], sts_tokens: Mapping[str, str], now: float
) -> Verified:
    params = dict(parse_query(req.raw_query))
    for name in V2_REQUIRED_PARAMS:
        if not params.get(name):
            raise missing(name)
    if params["SignatureMethod"] != "HMAC-SHA1":
        raise incomplete("SignatureMethod must be HMAC-SHA1.")
    if params["SignatureVersion"] != "1.0":
        raise incomplete("SignatureVersion must be 1.0.")
    if params["Format"].upper() != "JSON":
        # The real gateway would answer XML; the emulator only speaks JSON, so say so loudly.
        raise GatewayError(400, "InvalidParameter", "The emulator only supports Format=JSON.")
    check_timestamp(params["Timestamp"], now)
    access_key_id = params["AccessKeyId"]
    secret = lookup_secret(credentials, access_key_id)
    string_to_sign = v2_string_to_sign(req.method, params)
    if not hmac.compare_digest(v2_signature(secret, string_to_sign), params["Signature"]):
        raise GatewayError(400, "SignatureDoesNotMatch", SIGNATURE_MISMATCH + string_to_sign)
    token = params.get("SecurityToken")
    check_security_token(sts_tokens, access_key_id, token)
    return Verified(
        signature_version="v2",
        access_key_id=access_key_id,
        action=params["Action"],
        version=params["Version"],
        nonce=params["SignatureNonce"],
        params=params,
        security_token=token,
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
