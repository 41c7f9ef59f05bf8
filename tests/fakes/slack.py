"""A fake Slack on 127.0.0.1: Web API (`/api/<method>`), `response_url`s and file uploads.

Point the app at it with ``AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)`` and
give slash-command payloads ``response_url=fake.response_url("k")``. Every request is recorded
(``calls`` / ``posts``), failures can be scripted with ``fail_next`` and a delay with ``latency``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

if TYPE_CHECKING:
    from slack_bolt.request.async_request import AsyncBoltRequest

_WEB = "https://fake.slack.com/"


@dataclass
class ApiCall:
    method: str  # "chat.postMessage"
    args: dict  # query + form fields / JSON body; JSON-looking form values decoded
    token: str | None  # from "Authorization: Bearer ..." or the "token" form field
    at: float  # time.monotonic()
    error: str | None = None  # set when the fake answered ok=false (scripted or auth)


@dataclass
class WebhookPost:
    key: str  # the path key of the response_url
    body: dict  # the JSON posted
    at: float
    error: str | None = None  # set when the post was refused by fail_next("response_url")


@dataclass
class _Failure:
    error: str
    status: int | None
    retry_after: int | None


class FakeSlack:
    def __init__(self, *, bot_user_id="UBOT", team_id="T0001", bot_token="xoxb-test"):
        self.bot_user_id, self.team_id, self.bot_token = bot_user_id, team_id, bot_token
        self.tokens: set[str] = {bot_token}  # tokens accepted by the Web API
        self.latency = 0.0
        self.calls: list[ApiCall] = []
        self.posts: list[WebhookPost] = []
        self.uploads: dict[str, bytes] = {}
        self.base_url = ""
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self._ts = itertools.count(100)
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._webhook)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    def response_url(self, key: str = "r1") -> str:
        return f"{self.base_url}/response/{key}"

    # ---- inspection & scripting ----------------------------------------------------------
    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def posts_to(self, key: str) -> list[WebhookPost]:
        return [p for p in self.posts if p.key == key]

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        count: int = 1,
        status: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Make the next `count` calls to `method` (or "response_url") fail with `error`."""
        self._failures[method].extend(_Failure(error, status, retry_after) for _ in range(count))

    async def wait_for_posts(self, key: str, n: int = 1, timeout: float = 5.0) -> list[WebhookPost]:
        return await self._wait(lambda: self.posts_to(key), n, timeout, f"posts to {key!r}")

    async def wait_for_calls(self, method: str, n: int = 1, timeout: float = 5.0) -> list[ApiCall]:
        return await self._wait(lambda: self.calls_to(method), n, timeout, f"calls to {method}")

    async def _wait(self, get: Callable[[], list], n: int, timeout: float, what: str) -> list:
        async def until_enough() -> list:
            while len(got := get()) < n:
                await self._changed.wait()
            return got

        try:
            return await asyncio.wait_for(until_enough(), timeout)
        except TimeoutError:
            got = get()
            raise AssertionError(
                f"expected {n} {what} within {timeout}s, got {len(got)}: {got!r}"
            ) from None

    def _record(self, item: ApiCall | WebhookPost) -> None:
        (self.calls if isinstance(item, ApiCall) else self.posts).append(item)
        self._changed.set()  # wake every waiter, then re-arm
        self._changed = asyncio.Event()

    def _next_ts(self) -> str:
        sec, frac = divmod(next(self._ts), 1_000_000)
        return f"{1_700_000_000 + sec}.{frac:06d}"

    # ---- handlers ------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.latency)
        method = request.match_info["method"]
        args, token = await _read_args(request)
        call = ApiCall(method, args, token, time.monotonic())
        if token is None:
            call.error = "not_authed"
        elif token not in self.tokens:
            call.error = "invalid_auth"
        resp = self._scripted_failure(method, call)
        self._record(call)
        if resp:
            return resp
        if call.error:
            return web.json_response({"ok": False, "error": call.error})
        return web.json_response({"ok": True, **self._answer(method, args)})

    async def _webhook(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.latency)
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        post = WebhookPost(request.match_info["key"], body, time.monotonic())
        resp = self._scripted_failure("response_url", post)
        self._record(post)
        return resp or web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.latency)
        data = await request.read()
        self.uploads[request.match_info["file_id"]] = data
        return web.Response(text=f"OK - {len(data)}")

    def _scripted_failure(self, method: str, item: ApiCall | WebhookPost) -> web.Response | None:
        if not self._failures[method]:
            return None
        f = self._failures[method].popleft()
        item.error = f.error
        if f.error == "ratelimited":
            headers = {"Retry-After": str(1 if f.retry_after is None else f.retry_after)}
        else:
            headers = {}
        default = 429 if f.error == "ratelimited" else 200
        if isinstance(item, WebhookPost):  # Slack's webhooks answer errors as plain text
            return web.Response(status=f.status or max(default, 400), text=f.error, headers=headers)
        body = {"ok": False, "error": f.error}
        return web.json_response(body, status=f.status or default, headers=headers)

    def _answer(self, method: str, a: dict) -> dict[str, Any]:
        channel = a.get("channel")
        match method:
            case "auth.test":
                return {
                    "url": _WEB,
                    "team": "Fake",
                    "user": "otajob",
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "bot_id": "B0001",
                }
            case "chat.postMessage":
                ts = self._next_ts()
                msg = {"type": "message", "user": self.bot_user_id, "bot_id": "B0001", "ts": ts}
                msg |= {k: a[k] for k in ("text", "blocks", "thread_ts") if k in a}
                return {"channel": channel, "ts": ts, "message": msg}
            case "chat.update":
                return {"channel": channel, "ts": a.get("ts"), "text": a.get("text", "")}
            case "chat.postEphemeral":
                return {"message_ts": self._next_ts()}
            case "chat.getPermalink":
                p_ts = "p" + str(a.get("message_ts", "")).replace(".", "")
                return {"channel": channel, "permalink": f"{_WEB}archives/{channel}/{p_ts}"}
            case "conversations.join":
                return {"channel": {"id": channel, "name": "general", "is_member": True}}
            case "conversations.info":
                return {"channel": {"id": channel, "name": "general", "is_member": True}}
            case "users.info":
                user = {"id": a.get("user"), "name": f"user-{a.get('user')}", "locale": "en-US"}
                return {"user": user | {"tz": "Asia/Tokyo"}}
            case "views.publish":
                view = a.get("view") if isinstance(a.get("view"), dict) else {}
                return {"view": {"id": f"V{next(self._ids):04d}", **view}}
            case "files.getUploadURLExternal":
                file_id = f"F{next(self._ids):04d}"
                return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}
            case "files.completeUploadExternal":
                files = a.get("files") if isinstance(a.get("files"), list) else []
                return {"files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}
        return {}


async def _read_args(request: web.Request) -> tuple[dict, str | None]:
    """Merge query, form and JSON body; decode JSON-looking form values; pop the token."""
    args: dict[str, Any] = {k: _maybe_json(v) for k, v in request.query.items()}
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            args |= body if isinstance(body, dict) else {}
        else:
            for k, v in (await request.post()).items():
                args[k] = v.file.read() if isinstance(v, web.FileField) else _maybe_json(v)
    token = args.pop("token", None)
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        token = auth.removeprefix("Bearer ").strip() or token
    return args, token


def _maybe_json(value: str) -> Any:
    if value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


# ---- signed requests for in-process Bolt dispatch ------------------------------------------
def signed_request(
    body: str,
    signing_secret: str,
    *,
    content_type: str = "application/x-www-form-urlencoded",
    timestamp: int | None = None,
    extra_headers: dict | None = None,
) -> AsyncBoltRequest:
    """An AsyncBoltRequest signed like Slack does, for ``await app.async_dispatch(req)``."""
    from slack_bolt.request.async_request import AsyncBoltRequest

    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body)
    headers = {
        "content-type": content_type,
        "x-slack-signature": signature,
        "x-slack-request-timestamp": ts,
        **(extra_headers or {}),
    }
    return AsyncBoltRequest(body=body, headers=headers)


def slash_command_body(
    text: str,
    *,
    command: str = "/otajob",
    user_id: str = "U123",
    user_name: str = "alice",
    channel_id: str = "C123",
    team_id: str = "T0001",
    response_url: str,
    trigger_id: str = "1.2.3",
) -> str:
    """A urlencoded slash-command payload as Slack sends it."""
    return urlencode(
        {
            "token": "verification-token",
            "team_id": team_id,
            "team_domain": "fake",
            "channel_id": channel_id,
            "channel_name": "general",
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": "A0001",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )


def block_action_body(
    action_id: str,
    value: str,
    *,
    user_id: str = "U123",
    user_name: str = "alice",
    channel_id: str = "C123",
    team_id: str = "T0001",
    response_url: str,
    message: dict | None = None,
    block_id: str = "actions",
) -> str:
    """A ``payload=<json>`` block_actions body for a button click in a channel message."""
    message_ts = (message or {}).get("ts", "1700000000.000100")
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": "A0001",
        "token": "verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": "1.2.3",
        "team": {"id": team_id, "domain": "fake"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "general"},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "type": "button",
                "text": {"type": "plain_text", "text": action_id},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    if message is not None:
        payload["message"] = message
    return urlencode({"payload": json.dumps(payload)})
