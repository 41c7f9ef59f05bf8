"""Alibaba Cloud request signatures as the gateway recomputes them from the wire.

Written from the documentation only, never from the client's signer (bot.iot.signing):
a bug there must show up here as SignatureDoesNotMatch, not be mirrored. Sources:

* the team's reference notes (alibaba-iot-ota.md), section "Signing" (V3 and V2, both vectors).
* V3, ACS3-HMAC-SHA256: Alibaba Cloud SDK "Request syntax and signature method V3",
  https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature
* V2, RPC HMAC-SHA1: "Signature mechanism" (ECS), https://help.aliyun.com/document_detail/28839.html
  and "Sign a request", https://www.alibabacloud.com/help/doc-detail/50286.html

The query string is taken as raw text and percent-decoded here to bytes, then encoded
again by RFC 3986 for the canonical form. A '+' reads as a space: Alibaba's own Python SDK
(Tea / darabonba ``compose_url`` uses ``urllib.parse.urlencode``) sends a space as '+' while
signing %20, and the gateway accepts its requests. A literal plus must arrive as %2B.
Canonicalisation works on bytes, so a value that is not valid UTF-8 still round-trips.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

V3_ALGORITHM = "ACS3-HMAC-SHA256"
# Both schemes: ISO 8601 in UTC, "yyyy-MM-ddTHH:mm:ssZ" (x-acs-date, V2 Timestamp).
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# RFC 3986 unreserved characters: the only ones left as they are (both schemes' docs).
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")

Pair = tuple[bytes, bytes]


# --- bytes on the wire <-> canonical text ---------------------------------------------


def wire_bytes(text: str) -> bytes:
    """The bytes a str from the HTTP layer stands for (surrogateescape keeps raw bytes)."""
    return text.encode("utf-8", "surrogateescape")


def percent_decode(text: str) -> bytes:
    """``%XY`` (either case) -> the byte 0xXY, and '+' -> a space; everything else stays.

    '+' is read as a space because Alibaba's own SDKs send it so: ``Tea.core.TeaCore.
    compose_url`` builds the query with ``urlencode`` (space as '+') while signing the
    RFC 3986 form (%20), and the gateway accepts their requests. A literal plus must
    arrive as %2B. A '%' not followed by two hex digits is kept as a literal '%', which
    then cannot match anything a conforming client signed.
    """
    return _ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), wire_bytes(text).replace(b"+", b" "))


def percent_encode(data: bytes | str, safe: bytes = b"") -> str:
    """RFC 3986: unreserved bytes stay, every other byte is ``%XY`` in upper-case hex.

    So a space is %20 (never '+'), '*' is %2A, '/' is %2F (unless in ``safe``), '~' stays.
    """
    raw = wire_bytes(data) if isinstance(data, str) else data
    return "".join(chr(b) if b in UNRESERVED or b in safe else f"%{b:02X}" for b in raw)


def parse_query(raw_query: str) -> list[Pair]:
    """Split the raw query on '&' then the first '=', and percent-decode each side.

    A parameter with no '=' has the empty value (the V3 doc: "use an empty string for a
    parameter without a value").
    """
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((percent_decode(key), percent_decode(value)))
    return pairs


def as_text(data: bytes) -> str:
    """A decoded parameter as the API sees it: UTF-8 (invalid bytes become U+FFFD)."""
    return data.decode("utf-8", "replace")


def text_params(pairs: Iterable[Pair]) -> dict[str, str]:
    """The parameters as a dict of text (a repeated name keeps its last value)."""
    return {as_text(k): as_text(v) for k, v in pairs}


def canonical_query(pairs: Iterable[Pair]) -> str:
    """Sorted by name (then value, for a repeated name), each side RFC 3986 encoded,
    ``name=value`` joined by '&'.

    Both docs sort the parameters by name and then encode them; sorting the decoded
    bytes is the code-point order of the names.
    """
    ordered = sorted(pairs)
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in ordered)


def canonical_uri(raw_path: str) -> str:
    """The path, decoded and encoded again with '/' kept; '/' when empty (RPC APIs: '/')."""
    return percent_encode(percent_decode(raw_path), safe=b"/") or "/"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_timestamp(value: str) -> float:
    """Seconds since the epoch; ValueError unless exactly ``yyyy-MM-ddTHH:mm:ssZ``."""
    return datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=UTC).timestamp()


# --- V3: ACS3-HMAC-SHA256 -------------------------------------------------------------


def canonical_headers(headers: Mapping[str, str], signed: Iterable[str]) -> tuple[str, str]:
    """(CanonicalHeaders, SignedHeaders) for the ``signed`` names.

    Names lower-case and sorted, each line ``name:trimmed value\\n``; SignedHeaders is the
    same names joined by ';'. ``headers`` must already have lower-case names.
    """
    names = sorted({name.strip().lower() for name in signed if name.strip()})
    block = "".join(f"{name}:{headers[name].strip()}\n" for name in names)
    return block, ";".join(names)


def v3_canonical_request(
    method: str,
    uri: str,
    query: str,
    header_block: str,
    signed_headers: str,
    payload_sha256: str,
) -> str:
    """HTTPRequestMethod, CanonicalURI, CanonicalQueryString, CanonicalHeaders,
    SignedHeaders and HashedRequestPayload, joined by '\\n' (the header block already
    ends in '\\n', so an empty line follows it)."""
    return "\n".join((method.upper(), uri, query, header_block, signed_headers, payload_sha256))


def v3_string_to_sign(canonical_request: str) -> str:
    """``ACS3-HMAC-SHA256`` '\\n' hex(SHA-256(CanonicalRequest))."""
    return f"{V3_ALGORITHM}\n{sha256_hex(wire_bytes(canonical_request))}"


def v3_signature(secret: str, string_to_sign: str) -> str:
    """hex(HMAC-SHA256(AccessKeySecret, StringToSign)), lower-case."""
    key = secret.encode("utf-8")
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# --- V2: RPC HMAC-SHA1 ------------------------------------------------------------------


def v2_string_to_sign(method: str, pairs: Iterable[Pair]) -> str:
    """``METHOD&%2F&`` + percentEncode(CanonicalizedQueryString), Signature left out.

    The canonical query is encoded a second time, so '=' and '&' inside it become %3D and
    %26, and each '%' of the first encoding becomes %25.
    """
    unsigned = [(k, v) for k, v in pairs if k != b"Signature"]
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(unsigned))}"


def v2_signature(secret: str, string_to_sign: str) -> str:
    """Base64(HMAC-SHA1(AccessKeySecret + "&", UTF-8 of StringToSign))."""
    key = f"{secret}&".encode()
    digest = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")
