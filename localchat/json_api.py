"""The page's JSON API conventions: a JSON object in; ``{"ok": false, "error": …}`` out
with HTTP 400 when the request cannot be done (the page shows ``error``)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise refusal("expected a JSON object")
    return body


def refused(error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=400)


def refusal(error: str) -> web.HTTPBadRequest:
    """The same answer, to raise from deep in a handler."""
    return web.HTTPBadRequest(
        text=json.dumps({"ok": False, "error": error}), content_type="application/json"
    )
