"""Request signing as an httpx.Auth: the flow does no I/O, so it serves sync and async
clients alike and can be stepped by hand in tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Literal

import httpx

from . import signing
from .credentials import Credential

SignatureVersion = Literal["v3", "v2"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_nonce() -> str:
    return uuid.uuid4().hex


class AcsSignatureAuth(httpx.Auth):
    """Signs one request whose query string holds the API's own parameters."""

    requires_request_body = True

    def __init__(
        self,
        credential: Credential,
        *,
        action: str,
        version: str,
        signature: SignatureVersion = "v3",
        now: Callable[[], datetime] = utc_now,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        self.credential = credential
        self.action = action
        self.version = version
        self.signature = signature
        self._now = now
        self._nonce = nonce

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        params = signing.parse_query(request.url.query.decode("ascii"))
        common = {
            "action": self.action,
            "version": self.version,
            "access_key_id": self.credential.access_key_id,
            "access_key_secret": self.credential.access_key_secret,
            "security_token": self.credential.security_token,
            "now": self._now(),
            "nonce": self._nonce(),
        }
        if self.signature == "v3":
            query = signing.canonical_query(params)
            headers = signing.v3_sign(
                method=request.method,
                host=request.headers["host"],
                query=query,
                body=request.content,
                **common,
            )
            request.headers.update(headers)
        else:
            query = signing.canonical_query(
                signing.v2_sign(method=request.method, params=dict(params), **common)
            )
        # What was signed is byte for byte what is sent (a V3 query is canonical already:
        # the URL is not parsed again for nothing).
        if query.encode("ascii") != request.url.query:
            request.url = request.url.copy_with(query=query.encode("ascii"))
        yield request
