"""Counting every Slack Web API call for /metrics, whichever client makes it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from ..metrics import Metrics


class SlackCallCounter(AsyncRetryHandler):
    """Counts every Slack Web API answer by method and outcome. A retry handler, since
    slack_sdk shows each answer (and each failed attempt) to its handlers, and Bolt copies
    the app client's handlers into the client it makes for each request: so every call
    is seen, whichever client made it. It never asks for a retry itself."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_retry_count=0)
        self._metrics = metrics

    # can_retry_async itself: the base class asks _can_retry_async only while retries
    # are left, and this handler has none.
    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        # Web API methods are /api/<method>; a file's upload URL is one of its own.
        path = urlparse(request.url).path
        method = path.split("/api/", 1)[1].strip("/") if "/api/" in path else "file_upload"
        self._metrics.slack_call(method, _outcome(response, error))
        return False


def _outcome(response: HttpResponse | None, error: Exception | None) -> str:
    if error is not None:
        return type(error).__name__
    body: Any = response.body if response is not None else None
    if isinstance(body, dict):
        return "ok" if body.get("ok") else str(body.get("error") or "not_ok")[:60]
    return f"http_{response.status_code}" if response is not None else "unknown"
