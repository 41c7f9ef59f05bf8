"""``respond()`` that still reaches the person when Slack refuses the response_url.

A response_url takes at most five messages within thirty minutes of the interaction
(https://api.slack.com/interactivity/handling#message_responses); past that, or when it
has expired, Slack answers with an HTTP error and Bolt's ``respond()`` returns it without
raising, so the answer would be lost without a word. Here such an answer goes out through
the Web API instead: ``chat.postEphemeral`` to the person where they asked (a message
only they see, like the original), else a DM. A message meant for the whole channel is
posted with ``chat.postMessage``. One Bolt middleware puts this in every listener's
``respond``, so no surface can forget it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookResponse

from .access import request_parties

log = logging.getLogger("otajob.respond")


class FallbackRespond(AsyncRespond):
    def __init__(
        self,
        response_url: str,
        client: AsyncWebClient,
        channel_id: str | None,
        user_id: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(response_url=response_url, **kwargs)
        self._client = client
        self._channel_id = channel_id
        self._user_id = user_id

    async def __call__(self, text: str | dict = "", **kwargs: Any) -> WebhookResponse:  # type: ignore[override]
        response = await super().__call__(text, **kwargs)
        if 200 <= response.status_code < 300 or kwargs.get("delete_original"):
            return response
        log.info(
            "response_url refused (%s %s): answering through the Web API",
            response.status_code,
            (response.body or "")[:40],
        )
        message = dict(text) if isinstance(text, dict) else {"text": text, **kwargs}
        await self._by_web_api(message)
        return response

    async def _by_web_api(self, message: dict[str, Any]) -> None:
        content = {k: message[k] for k in ("text", "blocks") if message.get(k)}
        thread = {"thread_ts": message["thread_ts"]} if message.get("thread_ts") else {}
        channel, user = self._channel_id, self._user_id
        attempts: list[Callable[[], Awaitable[Any]]] = []
        if channel and message.get("response_type") == "in_channel":
            attempts.append(
                lambda: self._client.chat_postMessage(channel=channel, **thread, **content)
            )
        if channel and user:
            attempts.append(
                lambda: self._client.chat_postEphemeral(
                    channel=channel, user=user, **thread, **content
                )
            )
        if user:
            attempts.append(lambda: self._client.chat_postMessage(channel=user, **content))
        for attempt in attempts:
            try:
                await attempt()
                return
            except SlackApiError as exc:
                log.info("fallback answer refused: %s", exc.response.get("error"))
        log.warning("an answer could not be delivered by any route")


def register(app: AsyncApp) -> None:
    @app.middleware
    async def resilient_respond(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        url = req.context.response_url
        if url:
            _, user, channel = request_parties(req.body or {})
            req.context["respond"] = FallbackRespond(
                url,
                req.context.client,
                channel,
                user,
                proxy=req.context.client.proxy,
                ssl=req.context.client.ssl,
            )
        return await next()
