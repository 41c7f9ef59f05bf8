"""IotClient: one method per IoT Platform API action, over httpx.AsyncClient.

Each attempt takes a slot from the account's quota limiter, is signed afresh (new nonce,
new timestamp) and is classified into a typed error. Throttling, 5xx, timeouts and
connection failures are retried with exponential backoff and jitter, honouring
``x-acs-retry-after``, within a bounded total time.
"""

from __future__ import annotations

import asyncio
import json
import logging
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

from . import signing
from .auth import AcsSignatureAuth, SignatureVersion, new_nonce, utc_now
from .credentials import CredentialSource
from .errors import (
    IotBadResponse,
    IotCredentialsError,
    IotError,
    IotTransportError,
    IotUnavailable,
    api_error,
)
from .models import TASK_STATUSES, JobResult, OtaJob, TaskCounts
from .quota import Priority, SlidingWindowLimiter

API_VERSION = "2018-01-20"
log = logging.getLogger(__name__)
# httpx logs every request's full URL at INFO; with V2 signing that URL carries the
# Signature and an STS SecurityToken. Keep that line out of any log.
logging.getLogger("httpx").setLevel(logging.WARNING)


def endpoint_for_region(region_id: str) -> str:
    return f"https://iot.{region_id}.aliyuncs.com"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    total_seconds: float = 20.0  # a person is waiting; give up and say so after this
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0
    max_retry_after_seconds: float = 10.0  # the gateway's own hint, within the total budget


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("x-acs-retry-after")
    try:
        # Documented only as "how long to wait"; values seen are milliseconds.
        return float(value) / 1000 if value else None
    except ValueError:
        return None


def parse_response(response: httpx.Response) -> dict[str, Any]:
    """The body of a successful call, or a typed error for everything else."""
    try:
        body = json.loads(response.content)
    except ValueError:
        snippet = response.text[:120].strip().replace("\n", " ")
        message = f"HTTP {response.status_code} with a body that is not JSON: {snippet!r}"
        if response.status_code >= 500:  # a proxy's 502/504 page: worth retrying
            raise IotUnavailable(
                f"HTTP{response.status_code}", message, http_status=response.status_code
            ) from None
        raise IotBadResponse("InvalidResponse", message, http_status=response.status_code) from None
    if not isinstance(body, dict):
        raise IotBadResponse(
            "InvalidResponse", "the JSON body is not an object", None, response.status_code
        )
    request_id = body.get("RequestId")
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
        hint = getattr(error, "retry_after", None)
        if hint:
            return min(float(hint), self._max)
        return self._backoff(state)


class IotClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        credentials: CredentialSource,
        *,
        endpoint: str,
        limiter: SlidingWindowLimiter,
        signature: SignatureVersion = "v3",
        retry: RetryPolicy | None = None,
        now: Callable[[], datetime] = utc_now,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._endpoint = endpoint.rstrip("/") + "/"
        # One limiter per client, that is per credential source: the quota belongs to the
        # account, and a role's temporary AccessKeyIds rotate while the account stays.
        self._limiter = limiter
        self._signature = signature
        self._retry = retry or RetryPolicy()
        self._now = now
        self._nonce = nonce

    async def call(
        self, action: str, params: dict[str, str], *, priority: Priority = Priority.PERSON
    ) -> dict[str, Any]:
        """Call an API action; returns the response body of a successful call."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, IotError) and e.retryable),
            wait=_WaitRetryAfterOrBackoff(self._retry),
            stop=stop_after_attempt(self._retry.attempts)
            | stop_before_delay(self._retry.total_seconds),
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(action, params, priority)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _attempt(
        self, action: str, params: dict[str, str], priority: Priority
    ) -> dict[str, Any]:
        try:
            credential = await self._credentials.get()
        except Exception as exc:  # the chain found nothing, or a role could not be assumed
            raise IotCredentialsError(
                "CredentialsUnavailable", f"{type(exc).__name__}: {exc}"
            ) from None
        url = httpx.URL(self._endpoint).copy_with(
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
            async with self._limiter.slot(priority):
                response = await self._http.post(url, auth=auth)
        except httpx.TimeoutException:
            raise IotTransportError("Timeout", f"no answer from {url.host} in time") from None
        except httpx.TransportError as exc:
            raise IotTransportError(
                "ConnectionError", f"could not reach {url.host}: {type(exc).__name__}"
            ) from None
        return parse_response(response)

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("IoT call attempt %d failed, retrying: %s", state.attempt_number, error)

    async def query_ota_job(
        self,
        job_id: str,
        *,
        instance_id: str | None = None,
        priority: Priority = Priority.PERSON,
    ) -> JobResult:
        params = {"JobId": job_id}
        if instance_id:
            params["IotInstanceId"] = instance_id
        body = await self.call("QueryOTAJob", params, priority=priority)
        data = body.get("Data") or {}
        if not isinstance(data, dict):
            raise IotBadResponse("InvalidResponse", "Data is not an object", body.get("RequestId"))
        request_id = body.get("RequestId")
        return JobResult(job=OtaJob.parse(data), request_id=request_id, raw=data)

    async def count_tasks(
        self,
        job_id: str,
        *,
        instance_id: str | None = None,
        priority: Priority = Priority.PERSON,
    ) -> TaskCounts:
        """Devices per task status. There is no statistics API: one ListOTATaskByJob call
        per status with PageSize=1, reading Total; the calls go concurrently."""

        async def one(status: str) -> tuple[str, int, str | None]:
            params = {"JobId": job_id, "TaskStatus": status, "PageSize": "1", "CurrentPage": "1"}
            if instance_id:
                params["IotInstanceId"] = instance_id
            body = await self.call("ListOTATaskByJob", params, priority=priority)
            return status, int(body.get("Total") or 0), body.get("RequestId")

        results = await asyncio.gather(*(one(s) for s in TASK_STATUSES))
        return TaskCounts(
            counts={status: total for status, total, _ in results},
            request_ids=[rid for _, _, rid in results if rid],
        )
