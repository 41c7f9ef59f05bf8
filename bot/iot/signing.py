"""Alibaba Cloud API request signing as pure functions.

Two schemes are accepted by the gateway:

* V3, ``ACS3-HMAC-SHA256``: the signature travels in the ``Authorization`` header.
* V2, RPC ``HMAC-SHA1`` (SignatureVersion 1.0): the signature travels as a query
  parameter.

Every step (canonical request, string to sign, signature) is its own function so each
can be checked against Alibaba's published vectors. Nothing here reads a clock, makes a
nonce or does I/O: callers pass those in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote, unquote

V3_ALGORITHM = "ACS3-HMAC-SHA256"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding over UTF-8: space is %20, '*' is %2A, '/' is %2F, '~' stays."""
    return quote(value, safe="~", encoding="utf-8")


def canonical_query(params: Iterable[tuple[str, str]] | Mapping[str, str]) -> str:
    """Sorted ``encode(key)=encode(value)`` pairs joined by '&'.

    The same string is what we send on the wire, so what is signed is byte for byte
    what the gateway receives (httpx's own encoder would turn a space into '+').
    """
    items = params.items() if isinstance(params, Mapping) else params
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in items)
    return "&".join(f"{k}={v}" for k, v in encoded)


def parse_query(raw: str) -> list[tuple[str, str]]:
    """Split a raw query string into decoded pairs ('+' is a literal plus, as signed)."""
    pairs = []
    for part in raw.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- V3: ACS3-HMAC-SHA256 -----------------------------------------------------------


def v3_canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """Return (canonical header block, SignedHeaders) for the headers to be signed."""
    lowered = sorted((k.lower(), str(v).strip()) for k, v in headers.items())
    block = "".join(f"{k}:{v}\n" for k, v in lowered)
    return block, ";".join(k for k, _ in lowered)


def v3_canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body_sha256: str,
) -> str:
    block, signed = v3_canonical_headers(headers)
    return f"{method.upper()}\n{path or '/'}\n{query}\n{block}\n{signed}\n{body_sha256}"


def v3_string_to_sign(canonical_request: str) -> str:
    return f"{V3_ALGORITHM}\n{sha256_hex(canonical_request.encode('utf-8'))}"


def v3_signature(secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def v3_authorization(access_key_id: str, signed_headers: str, signature: str) -> str:
    return (
        f"{V3_ALGORITHM} Credential={access_key_id},"
        f"SignedHeaders={signed_headers},Signature={signature}"
    )


def v3_sign(
    *,
    method: str,
    host: str,
    query: str,
    body: bytes,
    action: str,
    version: str,
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None,
    now: datetime,
    nonce: str,
) -> dict[str, str]:
    """Headers to add to a request: the x-acs-* set and Authorization.

    ``query`` is the canonical query string that will be sent as is.
    """
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": format_timestamp(now),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": sha256_hex(body),
    }
    if security_token:
        headers["x-acs-security-token"] = security_token
    canonical = v3_canonical_request(method, "/", query, headers, headers["x-acs-content-sha256"])
    signature = v3_signature(access_key_secret, v3_string_to_sign(canonical))
    _, signed = v3_canonical_headers(headers)
    headers["authorization"] = v3_authorization(access_key_id, signed, signature)
    return headers


# --- V2: RPC HMAC-SHA1 --------------------------------------------------------------


def v2_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&`` + the canonical query encoded a second time (Signature excluded)."""
    query = canonical_query({k: v for k, v in params.items() if k != "Signature"})
    return f"{method.upper()}&%2F&{percent_encode(query)}"


def v2_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def v2_common_params(
    *,
    action: str,
    version: str,
    access_key_id: str,
    security_token: str | None,
    now: datetime,
    nonce: str,
) -> dict[str, str]:
    params = {
        "Action": action,
        "Format": "JSON",  # the IoT default is XML
        "Version": version,
        "AccessKeyId": access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": format_timestamp(now),
    }
    if security_token:
        params["SecurityToken"] = security_token
    return params


def v2_sign(
    *,
    method: str,
    params: Mapping[str, str],
    action: str,
    version: str,
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None,
    now: datetime,
    nonce: str,
) -> dict[str, str]:
    """All query parameters to send: the API's own, the common ones and Signature."""
    signed = dict(params)
    signed.update(
        v2_common_params(
            action=action,
            version=version,
            access_key_id=access_key_id,
            security_token=security_token,
            now=now,
            nonce=nonce,
        )
    )
    signed["Signature"] = v2_signature(access_key_secret, v2_string_to_sign(method, signed))
    return signed
