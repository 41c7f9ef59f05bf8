"""Driving the app's Slack surfaces in process: requests built as Slack sends them
(fakes/inbound.py), signed, into Bolt; answers landing in the fake Slack over real
HTTP.

Kept apart from tests/helpers.py (settings, runtimes, app.py as a process, waiting)
because it is one thing, used on its own by most Slack tests: how a request gets into
the app in process. It builds on tests/helpers.py, never the other way round."""

from __future__ import annotations

import json

from bot.runtime import Runtime
from fakes import Inbound
from tests.helpers import SIGNING_SECRET


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
