"""The HTTP client the IoT API is called with: httpx's requests over aiohttp's connection.

httpx is the interface (the signing is an httpx.Auth, errors are httpx's); the bytes go
through aiohttp (httpx-aiohttp's transport), whose C parser costs about half the CPU of
httpx's own stack per call (README, Benchmarks, "Capacity"). One correction: the
transport reports any aiohttp connection error as ``httpx.ConnectTimeout`` ("never
sent"), including a connection that broke after the request went out. A write must not
be retried then (it may have run), so only a failure to connect stays a connect error
(a refused connection a ConnectError, a slow one a ConnectTimeout).
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

HEADERS = {"user-agent": "otajob/0.1"}


class _Transport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except (httpx.ConnectTimeout, httpx.ConnectError) as exc:
            cause = exc.__cause__
            if cause is None or isinstance(cause, aiohttp.ConnectionTimeoutError):
                raise
            if isinstance(cause, aiohttp.ClientConnectorError):  # refused, no route, DNS
                raise httpx.ConnectError(str(cause)) from cause
            # Sent, maybe: the server closed the connection, or a socket error mid-way.
            raise httpx.ReadError(f"{type(cause).__name__}: {cause}") from cause


def _session() -> aiohttp.ClientSession:
    # No cap on connections: a call must go out when the limiter lets it go, not wait in
    # a pool (the limiter assumes it reaches the gateway soon after). Not trust_env: it
    # reads the environment (and ~/.netrc) again on every request; see _env_proxy.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), trust_env=False)


def _env_proxy(endpoint: str) -> httpx.Proxy | None:
    """HTTPS_PROXY / HTTP_PROXY for the endpoint unless NO_PROXY names it, as httpx would
    read them, but once: the endpoint does not change."""
    parts = urlsplit(endpoint)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return httpx.Proxy(proxy)


class IotHttp:
    """httpx's Request and Response, sent over the aiohttp transport directly: without
    AsyncClient.send's layers this client never needs (redirects, cookies, event hooks,
    auth rounds), which cost a quarter of the CPU of a call. Each read of an answer waits
    at most ``timeout`` seconds."""

    def __init__(self, timeout: float, endpoint: str) -> None:
        self._timeout = httpx.Timeout(timeout).as_dict()
        self._transport = _Transport(client=_session, proxy=_env_proxy(endpoint))

    def request(self, method: str, url: httpx.URL) -> httpx.Request:
        return httpx.Request(method, url, headers=HEADERS, extensions={"timeout": self._timeout})

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The answer with its headers; its body is read with ``aread()``, then closed."""
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()
