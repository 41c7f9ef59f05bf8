"""Driving the app's Slack surfaces in process: requests built as Slack sends them
(fakes/inbound.py), signed, into Bolt; answers landing in the fake Slack over real
HTTP.

Kept apart from tests/helpers.py (settings, runtimes, app.py as a process, waiting)
because it is one thing, used on its own by most Slack tests: how a request gets into
the app in process. It builds on tests/helpers.py, never the other way round."""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any

from bot.runtime import Runtime
from fakes import Inbound
from tests.helpers import SIGNING_SECRET


def slack(fake_slack, **workspace) -> Inbound:
    """The request builder for the fake's workspace, signing with the app's secret."""
    return Inbound(fake_slack, SIGNING_SECRET, **workspace)


# The app acks first and runs each listener's work after, in a task of its own
# (bot/slack/answering.py). Every task started while a request is dispatched, and
# every task those start in turn (they inherit the context), is a request's work:
# handled() waits for all of it.
_in_request: contextvars.ContextVar[bool] = contextvars.ContextVar("in_request", default=False)
_unfinished: set[asyncio.Task[Any]] = set()


def _request_task_factory(loop: asyncio.AbstractEventLoop, coro, **kwargs) -> asyncio.Task:
    task = asyncio.Task(coro, loop=loop, **kwargs)
    context = kwargs.get("context")
    if context.run(_in_request.get) if context is not None else _in_request.get():
        _unfinished.add(task)
        task.add_done_callback(_unfinished.discard)
    return task


async def dispatch(runtime: Runtime, request):
    loop = asyncio.get_running_loop()
    if loop.get_task_factory() is not _request_task_factory:
        assert loop.get_task_factory() is None, "another task factory is installed"
        loop.set_task_factory(_request_task_factory)
    marked = _in_request.set(True)
    try:
        return await runtime.app.async_dispatch(request)
    finally:
        _in_request.reset(marked)


async def finish_requests(timeout: float = 10.0) -> None:
    """For teardown, before the runtime and the fakes close: let the app finish what it
    still does for the requests of the test (a card's counts, a post on its way), so
    nothing is cut off half-sent; whatever still runs after ``timeout`` is cancelled."""
    loop = asyncio.get_running_loop()
    try:
        await handled(timeout)
    except TimeoutError:
        left = [t for t in _unfinished if t.get_loop() is loop]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)


async def handled(timeout: float = 10.0) -> None:
    """Return once everything the requests dispatched so far started has finished: the
    listeners Bolt ran after the ack, their posts and reads, and the tasks they started.
    A test that checks a request did nothing (no read, no post, no write) checks after
    this: then nothing more can come of that request."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        while pending := [t for t in _unfinished if t.get_loop() is loop]:
            await asyncio.wait(pending)


async def command(runtime: Runtime, fake_slack, text: str, key: str = "r1", **kwargs):
    """``/otajob <text>``, `text` as the person typed it (see Inbound.command)."""
    return await dispatch(runtime, slack(fake_slack).command(text, key=key, **kwargs))


async def answer(runtime: Runtime, fake_slack, text: str, key: str = "r1", **kwargs) -> dict:
    """The command's answer only the person sees: the ack's body when the app answered in
    the ack (their language already known), else its first post to the response_url."""
    response = await command(runtime, fake_slack, text, key=key, **kwargs)
    if response.body:
        return json.loads(response.body)
    await handled()
    posts = fake_slack.posts_to(key)
    assert posts, f"no answer to /otajob {text}"
    return posts[0].body


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
