"""One signed IoT API call: credentials, quota slot, deadlines, typed errors and retries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from ..metrics import Metrics
from . import signing
from .auth import AcsSignatureAuth, SignatureVersion, new_nonce, utc_now
from .credentials import CredentialSource
from .errors import (
    IotApiError,
    IotBadResponse,
    IotCredentialsError,
    IotError,
    IotThrottled,
    IotTransportError,
    IotUnavailable,
    api_error,
)
from .http import IotHttp
from .quota import Priority, SlidingWindowLimiter

API_VERSION = "2018-01-20"
# A write is sent only with at least this long to get its answer (or a whole attempt's
# time, if that is shorter).
MIN_WRITE_SECONDS = 3.0
# The documented answers nest 6 deep; far deeper JSON is not the API's, and would make
# later code (validation, rendering) hit Python's recursion limit.
MAX_JSON_DEPTH = 32
# The retry lines kept the logger name they had before the transport left client.py.
log = logging.getLogger("bot.iot.client")
# httpx logs every request's full URL at INFO; with V2 signing that URL carries the
# Signature and an STS SecurityToken. Keep that line out of any log.
logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    total_seconds: float = 20.0  # a person is waiting; give up and say so after this
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0
    max_retry_after_seconds: float = 10.0  # the gateway's own hint, within the total budget
    # One attempt, sending to the last byte of the answer. httpx's timeout bounds each
    # read only: a gateway dripping a byte a second would hold the caller forever.
    attempt_seconds: float = 10.0


def _delay(value: Any) -> float | None:
    """A usable wait in seconds, or None: NaN, infinite or negative is no hint at all (a
    NaN sleep corrupts the event loop's timer order)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("x-acs-retry-after")
    try:
        # Documented only as "how long to wait"; values seen are milliseconds.
        return _delay(float(value) / 1000) if value else None
    except ValueError:
        return None


def _header_request_id(response: httpx.Response) -> str | None:
    return response.headers.get("x-acs-request-id") or None


def unreadable(response: httpx.Response, why: str) -> IotError:
    """The error for an answer that is not the API's. Under 5xx it is a proxy's page or
    the platform's trouble, worth retrying; otherwise IotBadResponse."""
    status = response.status_code
    message = f"HTTP {status} with {why}"
    rid = _header_request_id(response)
    if status >= 500:
        return IotUnavailable(f"HTTP{status}", message, rid, http_status=status)
    return IotBadResponse("InvalidResponse", message, rid, http_status=status)


class _BadNumber(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _BadNumber(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 becomes inf, which no count or int() survives
        raise _BadNumber(f"{text[:20]} is out of range")
    return value


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def parse_response(response: httpx.Response) -> dict[str, Any]:
    """The body of a successful call, or a typed error for everything else."""
    try:
        body = json.loads(
            response.content, parse_constant=_reject_constant, parse_float=_finite_float
        )
    except RecursionError:
        raise unreadable(response, "JSON nested too deep to read") from None
    except _BadNumber as exc:
        raise unreadable(response, f"a number that cannot be read: {exc}") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, an int of too many digits
        # Not response.text: a charset it names (utf-16, say) may not decode either.
        snippet = response.content[:120].decode("utf-8", "replace").strip().replace("\n", " ")
        raise unreadable(response, f"a body that is not JSON: {snippet!r}") from None
    if isinstance(body, dict | list) and _too_deep(body):
        raise unreadable(response, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(body, dict):
        raise IotBadResponse(
            "InvalidResponse",
            "the JSON body is not an object",
            _header_request_id(response),
            response.status_code,
        )
    # A RequestId that is not text is no RequestId (the models take text only).
    request_id = body.get("RequestId")
    if not isinstance(request_id, str) or not request_id:
        request_id = _header_request_id(response)
        body["RequestId"] = request_id
    # IoT business errors say Success: false with ErrorMessage, under HTTP 200 or not;
    # gateway errors say Code and Message under 4xx/5xx.
    if response.is_success and body.get("Success", True) is not False:
        return body
    code = str(body.get("Code") or f"HTTP{response.status_code}")
    message = str(body.get("ErrorMessage") or body.get("Message") or "no message given")
    raise api_error(code, message, request_id, response.status_code, _retry_after(response))


class _WaitRetryAfterOrBackoff:
    def __init__(self, policy: RetryPolicy) -> None:
        self._backoff = wait_random_exponential(
            multiplier=policy.backoff_seconds, max=policy.max_backoff_seconds
        )
        self._max = policy.max_retry_after_seconds

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        hint = _delay(getattr(error, "retry_after", None))
        if hint:
            return min(hint, self._max)
        return self._backoff(state)


class _Budget:
    """One call's time. An attempt may take attempt_seconds from when it is sent (a wait
    for the quota is ours, not the gateway's), cut to what is left of total_seconds
    counted from the first send. A total of 0 means no retries, not no time."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._ends: float | None = None

    @property
    def full(self) -> float:
        """What one attempt may take at most (the first one always gets it)."""
        policy = self._policy
        if policy.total_seconds <= 0:
            return policy.attempt_seconds
        return min(policy.attempt_seconds, policy.total_seconds)

    def seconds_for_attempt(self) -> float:
        """For the attempt about to be sent; 0 when nothing is left."""
        policy, now = self._policy, time.monotonic()
        if self._ends is None:
            self._ends = now + policy.total_seconds
            if policy.total_seconds <= 0:
                return policy.attempt_seconds
        return max(0.0, min(policy.attempt_seconds, self._ends - now))


def _retryable(error: BaseException) -> bool:
    return isinstance(error, IotError) and error.retryable


def _safe_to_retry_write(error: BaseException) -> bool:
    # A timeout, a broken connection, a 5xx or an unreadable answer may hide a cancel that
    # took effect: the person decides again. Only throttled or never sent surely did not run.
    return isinstance(error, IotError) and error.retryable and not error.may_have_run


def outcome_of(error: IotError) -> str:
    """An attempt's outcome, as /metrics counts it."""
    if isinstance(error, IotThrottled):
        return "throttled"
    if isinstance(error, IotUnavailable):
        return "unavailable"
    if isinstance(error, IotApiError):
        return "refused"
    if isinstance(error, IotTransportError):
        return "timeout" if error.code == "Timeout" else "connection"
    if isinstance(error, IotBadResponse):
        return "bad_response"
    if isinstance(error, IotCredentialsError):
        return "credentials"
    return "error"


class Transport:
    """Calls IoT Platform API actions over IotHttp (httpx requests, aiohttp's connection).

    Each attempt takes a slot from the account's quota limiter, is signed afresh (new
    nonce, new timestamp) and is classified into a typed error. Throttling, 5xx, timeouts
    and connection failures are retried with exponential backoff and jitter, honouring
    ``x-acs-retry-after``, within a bounded total time. Each attempt, reading the whole
    answer included, has a deadline of its own, and any answer that cannot be read is
    IotBadResponse.
    """

    def __init__(
        self,
        http: IotHttp,
        credentials: CredentialSource,
        *,
        endpoint: str,
        limiter: SlidingWindowLimiter,
        signature: SignatureVersion = "v3",
        retry: RetryPolicy | None = None,
        now: Callable[[], datetime] = utc_now,
        nonce: Callable[[], str] = new_nonce,
        metrics: Metrics | None = None,
    ) -> None:
        self._http = http
        self._metrics = metrics
        self._credentials = credentials
        self._endpoint = endpoint.rstrip("/") + "/"
        self._base_url = httpx.URL(self._endpoint)  # parsed once: each call adds a query
        # One limiter per client, that is per credential source: the quota belongs to the
        # account, and a role's temporary AccessKeyIds rotate while the account stays.
        self._limiter = limiter
        self._signature = signature
        self._retry = retry or RetryPolicy()
        self._now = now
        self._nonce = nonce

    def quota_busy(self) -> bool:
        """Calls are waiting for the account's quota (work queued behind work)."""
        return self._limiter.waiting() > 0

    async def call(
        self,
        action: str,
        params: dict[str, str],
        *,
        priority: Priority = Priority.PERSON,
        write: bool = False,
    ) -> dict[str, Any]:
        """Call an API action; returns the response body of a successful call. A ``write``
        is retried only when it surely did not run (throttled, or no connection made)."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(_safe_to_retry_write if write else _retryable),
            wait=_WaitRetryAfterOrBackoff(self._retry),
            stop=stop_after_attempt(self._retry.attempts)
            | stop_before_delay(self._retry.total_seconds),
            before_sleep=self._log_retry,
            reraise=True,
        )
        budget = _Budget(self._retry)
        async for attempt in retrying:
            with attempt:
                try:
                    body = await self._attempt(action, params, priority, budget, write=write)
                except IotError as exc:
                    self._count(action, outcome_of(exc))
                    raise
                self._count(action, "ok")
                return body
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _attempt(
        self,
        action: str,
        params: dict[str, str],
        priority: Priority,
        budget: _Budget,
        *,
        write: bool = False,
    ) -> dict[str, Any]:
        try:
            credential = await self._credentials.get()
        except Exception as exc:  # the chain found nothing, or a role could not be assumed
            raise IotCredentialsError(
                "CredentialsUnavailable", f"{type(exc).__name__}: {exc}"
            ) from None
        url = self._base_url.copy_with(
            query=signing.canonical_query(params).encode("ascii") or None
        )
        auth = AcsSignatureAuth(
            credential,
            action=action,
            version=API_VERSION,
            signature=self._signature,
            now=self._now,
            nonce=self._nonce,
        )
        try:
            waiting_since = time.monotonic()
            async with self._limiter.slot(priority):
                if self._metrics is not None:
                    waited = time.monotonic() - waiting_since
                    self._metrics.quota_waited(priority.name.lower(), waited)
                seconds = budget.seconds_for_attempt()
                # A write sent with almost no time left would time out and leave "it may
                # have run" where "it was not sent" is the truth: do not send it at all.
                if seconds <= 0 or (write and seconds < min(MIN_WRITE_SECONDS, budget.full)):
                    raise IotTransportError(
                        "Timeout",
                        "the retry budget ran out while waiting for a place in the API quota",
                        sent=False,
                    )
                try:
                    async with asyncio.timeout(seconds):
                        response = await self._send(url, auth)
                except TimeoutError:
                    raise IotTransportError(
                        "Timeout", f"no complete answer from {url.host} within {seconds:g} s"
                    ) from None
        except (httpx.ConnectTimeout, httpx.PoolTimeout):  # no connection: never sent
            raise IotTransportError(
                "Timeout", f"could not connect to {url.host} in time", sent=False
            ) from None
        except httpx.TimeoutException:
            raise IotTransportError("Timeout", f"no answer from {url.host} in time") from None
        except httpx.ConnectError as exc:  # no connection: the request never left
            raise IotTransportError(
                "ConnectionError", f"could not reach {url.host}: {type(exc).__name__}"
            ) from None
        except httpx.TransportError as exc:  # sent, maybe: the connection broke mid-way
            raise IotTransportError(
                "ConnectionLost", f"lost the connection to {url.host}: {type(exc).__name__}"
            ) from None
        return parse_response(response)

    def _count(self, action: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.iot_call(action, outcome)

    async def _send(self, url: httpx.URL, auth: httpx.Auth) -> httpx.Response:
        """POST and read the whole answer. Streamed, so a body that does not decode (a
        Content-Encoding it does not follow) still has its status and headers."""
        request = next(auth.auth_flow(self._http.request("POST", url)))  # no I/O: one step
        response = await self._http.send(request)
        async with contextlib.aclosing(response):
            try:
                await response.aread()
            except httpx.DecodingError as exc:  # a RequestError, yet no TransportError
                encoding = response.headers.get("content-encoding", "none")
                raise unreadable(
                    response,
                    f"a body that does not decode (Content-Encoding {encoding!r}): {str(exc)[:80]}",
                ) from None
        return response

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("IoT call attempt %d failed, retrying: %s", state.attempt_number, error)
