"""The local chat surface: a page in the browser, and Slack's side of the protocol.

Slack's side is the fake Slack of the tests (``fakes/``), mounted on the app's own server:
its Web API at ``/api/<method>``, response_urls at ``/response/<key>``, file uploads at
``/upload/<id>``. What the person does on the page becomes what Slack would send the app:
slash commands, button clicks, modal submissions, mentions and Home-tab opens, built and
signed by ``fakes.Inbound`` and POSTed over HTTP to ``/slack/events``, the same URL Slack
calls. The app is unchanged; it cannot tell this page from Slack.

What Slack does with the app's answers is done here, as Slack documents it:
- a slash command's acknowledgement body is shown like a response_url post, ephemeral
  unless ``response_type`` is ``in_channel``; no answer within 3 s shows
  ``operation_timeout`` ("Implementing slash commands", "Responding to commands");
- a view submission's acknowledgement closes the modal, or with ``response_action``
  shows ``errors``, ``update``s or ``push``es a view, or ``clear``s them all ("Modals",
  "Handling submissions");
- the ack body of a button click is ignored (block_actions reference).

The page reads one JSON state (``GET /local/api/state``, long-polled) and sends what the
person does (``POST /local/api/...``). Every string from the app or Alibaba Cloud reaches
the page as JSON data and is rendered as text (static/app.js never builds markup from it).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest

from fakes import FakeSlack, Inbound, ResponseTarget, as_http

from .emulator_panel import EmulatorPanel
from .json_api import json_body, refused
from .workspace import ME, channel_list, conversation_of

log = logging.getLogger("otajob.local")

STATIC = Path(__file__).parent / "static"
COMMAND = "/otajob"
ACK_SECONDS = 3.0  # Slack shows operation_timeout when a command is not acknowledged in 3 s
LONG_POLL_SECONDS = 20.0
# The page is served from this process; nothing it shows may load or run anything else.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:;"
        " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class LocalSurface:
    def __init__(
        self,
        fake: FakeSlack,
        *,
        signing_secret: str,
        events_url: str,
        demo: bool,
        panel: EmulatorPanel | None,
        port: int,
    ) -> None:
        self.fake = fake
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self.slack = Inbound(fake, signing_secret, user_id=ME.id)
        self.events_url = events_url
        self.demo = demo
        self.panel = panel
        self._keys = itertools.count(1)
        self._modal_errors: dict[str, dict[str, str]] = {}
        self._http: httpx.AsyncClient | None = None

    # ---- wiring --------------------------------------------------------------------------
    def add_to(self, app: web.Application) -> None:
        self.fake.add_routes(app.router)
        router = app.router
        router.add_get("/", self._page)
        router.add_static("/static/", STATIC)
        router.add_get("/local/api/state", self._state)
        router.add_post("/local/api/say", self._say)
        router.add_post("/local/api/click", self._click)
        router.add_post("/local/api/submit", self._submit)
        router.add_post("/local/api/close", self._close)
        router.add_post("/local/api/home", self._home)
        router.add_get("/local/files/{file_id}", self._file)
        if self.panel is not None:
            self.panel.add_to(router)
        else:  # the real API: nothing to drive
            router.add_get("/local/api/emulator", _no_panel)
        app.middlewares.append(self._only_from_this_page)
        app.on_response_prepare.append(_secure)
        app.on_shutdown.append(self._wake_readers)
        app.on_cleanup.append(self._aclose)

    @web.middleware
    async def _only_from_this_page(self, request: web.Request, handler) -> web.StreamResponse:
        """The surface signs requests as Slack and may run write actions: only this page
        may drive it. A Host that is not this address (a rebound DNS name) is refused, and
        so is a POST from another site's page: it must be JSON (which a cross-site form or
        simple request cannot send without a preflight we never grant) and, when the
        browser names its origin, from this one."""
        if request.host not in self.hosts:
            raise web.HTTPMisdirectedRequest(text="open the page at the address otajob printed")
        if request.method == "POST" and request.path.startswith("/local/"):
            origin = request.headers.get("Origin")
            if origin is not None and origin.removeprefix("http://") not in self.hosts:
                raise web.HTTPForbidden(text="requests from other sites are refused")
            if request.content_type != "application/json":
                raise web.HTTPUnsupportedMediaType(text="expected application/json")
        return await handler(request)

    async def _wake_readers(self, _: web.Application) -> None:
        """Answer the page's long polls now: the server waits for open requests to end."""
        self.fake.touch()

    async def _aclose(self, _: web.Application) -> None:
        if self._http is not None:
            await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            # Longer than Slack waits: a late answer is still shown, after the timeout note.
            self._http = httpx.AsyncClient(timeout=30.0)
        return self._http

    # ---- the page ------------------------------------------------------------------------
    async def _page(self, _: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _state(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "-1"))
        except ValueError:
            since = -1
        if since <= self.fake.version:  # ahead of us: the app restarted, answer at once
            await self.fake.changed_since(since, LONG_POLL_SECONDS)
        return web.json_response(self.snapshot(), dumps=_dumps)

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as plain data."""
        fake = self.fake
        channels = channel_list(fake)
        messages = {ch["id"]: fake.messages(ch["id"]) for ch in channels}
        ephemerals = [
            {k: e[k] for k in ("id", "text", "blocks", "thread_ts")}
            | {"channel": conversation_of(e["channel"])}
            for e in fake.ephemerals
            if e["user"] == ME.id
        ]
        files = [
            {
                "id": f["id"],
                "title": f["title"],
                "filename": f["filename"],
                "channel_id": conversation_of(f["channel_id"] or ""),
                "thread_ts": f["thread_ts"],
                "ts": f["ts"],
                "size": len(f["content"]),
                "initial_comment": f["initial_comment"],
                "url": f"/local/files/{f['id']}",
            }
            for f in fake.files
        ]
        modal = None
        if fake.views:
            top = list(fake.views.values())[-1]
            modal = top | {"errors": self._modal_errors.get(top["id"], {})}
        return {
            "version": fake.version,
            "me": {
                "id": ME.id,
                "name": ME.name,
                "locale": fake.directory.person(ME.id).locale,  # how Slack shows dates
            },
            "bot": {"id": fake.bot_user_id, "name": "otajob"},
            "demo": self.demo,
            "users": {p.id: p.name for p in fake.directory.people()},
            "groups": {g.id: g.handle for g in fake.directory.usergroups()},
            "channels": channels,
            "messages": messages,
            "ephemerals": ephemerals,
            "files": files,
            "modal": modal,
            "home": fake.home.get(ME.id),
        }

    async def _file(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        found = next((f for f in self.fake.files if f["id"] == file_id), None)
        if found is None:
            raise web.HTTPNotFound(text="no such file")
        # Always a download, never rendered: the name is the app's, the bytes are data.
        safe_name = "".join(c for c in found["filename"] if c.isalnum() or c in "._-")[:100]
        return web.Response(
            body=found["content"],
            content_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{safe_name or "file"}"'},
        )

    # ---- what the person does ------------------------------------------------------------
    async def _say(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        channel = _text(body, "channel")
        text = _text(body, "text").strip()
        thread_ts = body.get("thread_ts") or None
        if not channel or not text:
            return refused("Type a message first.")
        if text.startswith("/"):
            return await self._command(channel, text)
        event = self.slack.mention_event(text, channel_id=channel, thread_ts=thread_ts)
        msg = self.fake.add_message(
            channel, event["text"], user=ME.id, thread_ts=thread_ts, blocks=event["blocks"]
        )
        if f"<@{self.fake.bot_user_id}>" in event["text"]:
            event = self.slack.mention_event(
                text, channel_id=channel, thread_ts=thread_ts, ts=msg["ts"]
            )
            await self._send(self.slack.event(event))
        return web.json_response({"ok": True})

    async def _command(self, channel: str, typed: str) -> web.Response:
        command, _, text = typed.partition(" ")
        target = ResponseTarget(channel, ME.id)
        if command != COMMAND:
            # What Slack answers for a command no app in the workspace registered.
            note = (
                f"{command} is not a valid command. In Slack, messages starting with / are"
                f" commands. Try {COMMAND} help."
            )
            self.fake.deliver(target, {"text": note})
            return web.json_response({"ok": True})
        key = f"cmd{next(self._keys)}"
        self.fake.response_url(key, target)
        request = self.slack.command(text.strip(), channel_id=channel, key=key)
        started = time.monotonic()
        status, answer = await self._send(request)
        if time.monotonic() - started > ACK_SECONDS:
            # The app answered, but later than Slack waits: Slack would show this instead.
            self.fake.deliver(
                target, {"text": f'{COMMAND} failed with the error "operation_timeout"'}
            )
        elif status != 200:
            self.fake.deliver(
                target, {"text": f'{COMMAND} failed with the error "dispatch_failed"'}
            )
        elif isinstance(answer, dict) and any(answer.get(k) for k in ("text", "blocks")):
            # What the app sends to the response_url next may replace this answer.
            self.fake.response_url(key, self.fake.deliver(target, answer))
        return web.json_response({"ok": True})

    async def _click(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        where = _text(body, "where")
        if where not in ("message", "ephemeral", "home", "modal"):
            return refused("where: message, ephemeral, home or modal")
        action_id = _text(body, "action_id")
        if not action_id:
            return refused("a click needs the button's action_id")
        args: dict[str, Any] = {
            "where": where,
            "block_id": _text(body, "block_id") or "actions",
            "text": _text(body, "text") or None,
        }
        if where in ("message", "ephemeral"):
            args["channel_id"] = _text(body, "channel")
            args["message_ts"] = _text(body, "message_ts" if where == "message" else "ephemeral_id")
            args["key"] = f"act{next(self._keys)}"
        else:
            args["view_id"] = _text(body, "view_id")
            args["key"] = None
            if where == "modal" and isinstance(body.get("state"), dict):
                args["state"] = body["state"]
        await self._send(self.slack.click(action_id, _text(body, "value"), **args))
        return web.json_response({"ok": True})

    async def _submit(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        view_id = _text(body, "view_id")
        if view_id not in self.fake.views:
            return refused("That dialog is no longer open.")
        values = body.get("values") if isinstance(body.get("values"), dict) else {}
        status, answer = await self._send(self.slack.submit(view_id=view_id, values=values))
        if status != 200:
            # Slack keeps the modal open and says it could not reach the app.
            self._modal_errors[view_id] = {"": "We had some trouble connecting. Try again?"}
            self.fake.touch()
            return web.json_response({"ok": True})
        self._after_submission(view_id, answer if isinstance(answer, dict) else {})
        return web.json_response({"ok": True})

    def _after_submission(self, view_id: str, answer: dict) -> None:
        action = answer.get("response_action")
        self._modal_errors.pop(view_id, None)
        if action == "errors" and isinstance(answer.get("errors"), dict):
            self._modal_errors[view_id] = {str(k): str(v) for k, v in answer["errors"].items()}
            self.fake.touch()
        elif action == "update" and isinstance(answer.get("view"), dict):
            self.fake.views[view_id] = {"id": view_id, **answer["view"]}
            self.fake.touch()
        elif action == "push" and isinstance(answer.get("view"), dict):
            pushed = f"{view_id}P{next(self._keys)}"
            self.fake.views[pushed] = {"id": pushed, **answer["view"]}
            self.fake.touch()
        elif action == "clear":
            for open_id in list(self.fake.views):
                self.fake.close_view(open_id)
        else:
            self.fake.close_view(view_id)

    async def _close(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        view_id = _text(body, "view_id")
        self._modal_errors.pop(view_id, None)
        self.fake.close_view(view_id)
        return web.json_response({"ok": True})

    async def _home(self, _: web.Request) -> web.Response:
        await self._send(self.slack.home_opened(ME.id))
        return web.json_response({"ok": True})

    async def _send(self, request: AsyncBoltRequest) -> tuple[int, Any]:
        """POST a signed request to the app as Slack does; its status and JSON answer."""
        body, headers = as_http(request)
        try:
            response = await self.http.post(self.events_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("the app did not answer the local surface: %s", exc)
            return 0, None
        try:
            answer = response.json() if response.content else None
        except ValueError:
            answer = None
        return response.status_code, answer


def failed_command(error: str) -> str:
    """What Slack shows the person when the app's answer did not come in time or failed."""
    return f'{COMMAND} failed with the error "{error}"'


async def _no_panel(_: web.Request) -> web.Response:
    return web.json_response({"available": False})


async def _secure(_: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


def _dumps(data: Any) -> str:
    # Bytes never reach the page (file contents are downloads); ensure_ascii keeps the
    # JSON plain even with hostile control characters in it.
    return json.dumps(data, ensure_ascii=True)
