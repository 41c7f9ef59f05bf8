"""Driving the app's Slack surfaces in process: signed requests into Bolt, answers
landing in the fake Slack over real HTTP."""

from __future__ import annotations

import json

from bot.iot.credentials import StaticCredentials
from bot.runtime import Runtime, build_runtime
from tests.conftest import CREDENTIAL, SIGNING_SECRET, app_settings
from tests.fakes import (
    block_action_body,
    event_body,
    signed_request,
    slash_command_body,
    view_submission_body,
)


async def start_runtime(emulator, fake_slack, **settings: str) -> Runtime:
    return await build_runtime(
        app_settings(emulator, fake_slack, **settings), credentials=StaticCredentials(CREDENTIAL)
    )


async def command(runtime: Runtime, fake_slack, text: str, key: str = "r1", **kwargs):
    body = slash_command_body(text, response_url=fake_slack.response_url(key), **kwargs)
    return await runtime.app.async_dispatch(signed_request(body, SIGNING_SECRET))


async def click(runtime: Runtime, fake_slack, action_id: str, value: str, key="b1", **kwargs):
    url = fake_slack.response_url(key) if key else None
    body = block_action_body(action_id, value, response_url=url, **kwargs)
    return await runtime.app.async_dispatch(signed_request(body, SIGNING_SECRET))


async def deliver(
    runtime: Runtime, event: dict, *, event_id="Ev0001", retry: int | None = None, **kwargs
):
    """An Events API delivery; ``retry`` sets X-Slack-Retry-Num as Slack does on retries."""
    headers = {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"}
    request = signed_request(
        event_body(event, event_id=event_id, **kwargs),
        SIGNING_SECRET,
        content_type="application/json",
        extra_headers=headers if retry else None,
    )
    return await runtime.app.async_dispatch(request)


async def submit(runtime: Runtime, callback_id: str, **kwargs):
    body = view_submission_body(callback_id, **kwargs)
    return await runtime.app.async_dispatch(signed_request(body, SIGNING_SECRET))


def dump(value) -> str:
    return json.dumps(getattr(value, "body", value), ensure_ascii=False)


def buttons(blocks: list[dict]) -> dict[str, dict]:
    """action_id -> button, over every actions block and section accessory."""
    found = {}
    for block in blocks:
        for element in block.get("elements") or []:
            if element.get("type") == "button":
                found[element["action_id"]] = element
        accessory = block.get("accessory") or {}
        if accessory.get("type") == "button":
            found.setdefault(accessory["action_id"], accessory)
    return found
