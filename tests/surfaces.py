"""Driving the app's Slack surfaces in process: requests built as Slack sends them
(tests/fakes/inbound.py), signed, into Bolt; answers landing in the fake Slack over real
HTTP."""

from __future__ import annotations

import json

from bot.iot.credentials import StaticCredentials
from bot.runtime import Runtime, build_runtime
from tests.conftest import CREDENTIAL, SIGNING_SECRET, app_settings
from tests.fakes import Inbound


async def start_runtime(emulator, fake_slack, **settings: str) -> Runtime:
    return await build_runtime(
        app_settings(emulator, fake_slack, **settings), credentials=StaticCredentials(CREDENTIAL)
    )


def slack(fake_slack, **workspace) -> Inbound:
    """The request builder for the fake's workspace, signing with the app's secret."""
    return Inbound(fake_slack, SIGNING_SECRET, **workspace)


async def dispatch(runtime: Runtime, request):
    return await runtime.app.async_dispatch(request)


async def command(runtime: Runtime, fake_slack, text: str, key: str = "r1", **kwargs):
    """``/otajob <text>``, `text` as the person typed it (see Inbound.command)."""
    return await dispatch(runtime, slack(fake_slack).command(text, key=key, **kwargs))


async def click(runtime: Runtime, fake_slack, action_id: str, value: str, key="b1", **kwargs):
    return await dispatch(runtime, slack(fake_slack).click(action_id, value, key=key, **kwargs))


async def mention(runtime: Runtime, fake_slack, text: str, **kwargs):
    """An ``app_mention`` delivery of `text` as the person typed it (``@otajob …``)."""
    return await dispatch(runtime, slack(fake_slack).mention(text, **kwargs))


async def home_opened(runtime: Runtime, fake_slack, user_id: str = "U123", **kwargs):
    return await dispatch(runtime, slack(fake_slack).home_opened(user_id, **kwargs))


async def submit(runtime: Runtime, fake_slack, callback_id: str, **kwargs):
    return await dispatch(runtime, slack(fake_slack).submit(callback_id, **kwargs))


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
