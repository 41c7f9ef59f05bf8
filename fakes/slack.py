"""A fake Slack on 127.0.0.1: Web API (`/api/<method>`), `response_url`s and file uploads.

Point the app at it with ``AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)`` and
send the app requests as Slack would with ``Inbound(fake, secret)`` (fakes/inbound.py),
which takes response_urls and trigger_ids from the fake. Every request is recorded
(``calls`` / ``posts``), failures can be scripted with ``fail_next`` and a delay with ``latency``.

It also models channels and the messages in them, like Slack: ``chat.postMessage`` stores a
message (``messages`` / ``top_level`` / ``thread``), ``chat.update`` edits it, and
``conversations.history`` / ``.replies`` / ``.info`` / ``.join`` / ``.leave`` / ``.members`` read
the model. Channel IDs never seen before are public channels the bot is a member of; register
others with ``add_channel`` / ``remove_channel``. A channel set to a user ID ("U…"/"W…") is a DM.
A scripted ``fail_next`` failure wins over the model (and changes nothing in it).

Beyond messages it keeps: modals opened with ``views.open`` (``views``, by view ID), Home tabs
published with ``views.publish`` (``home``, by user ID), ephemeral messages (``ephemerals``),
completed file uploads (``files``) and the user groups that ``usergroups.users.list`` answers
from (``usergroups``, set by tests).

It refuses what Slack refuses, with Slack's codes (fakes/README.md lists each rule and its
source): a trigger_id must come from ``new_trigger_id()``, works once and within 3 seconds;
Block Kit limits (fakes/block_kit.py) give ``invalid_blocks`` / ``invalid_arguments``;
per-method rate limits (fakes/rate_tiers.py, ``rate_limits=False`` to switch off) give
HTTP 429 ``ratelimited`` with Retry-After; a response_url takes 5 posts within 30 minutes.
Every time-based rule reads the injected ``clock`` (``time.monotonic`` by default).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import itertools
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from fakes.block_kit import message_errors, slack_messages, view_errors
from fakes.directory import Directory
from fakes.rate_tiers import RateLimiter

_WEB = "https://fake.slack.com/"
BOT_ID = "B0001"
TRIGGER_TTL = 3.0  # seconds; see FakeSlack._trigger
# chat.postMessage reference, "Truncating content": "Slack will truncate messages containing
# more than 40,000 characters" (https://docs.slack.dev/reference/methods/chat.postMessage), and
# the same page lists msg_too_long. A Slack maintainer says the platform now refuses far shorter
# texts with msg_too_long (seratch/ChatGPT-in-Slack#102: "the 40K truncation is an old
# requirement and the platform now has a smaller limit"), so the fake refuses anything Slack
# would no longer post intact: text over 40,000 characters gets msg_too_long.
TEXT_MAX = 40_000
# "Handling user interaction", Message responses: a response_url can be used "up to 5 times
# within 30 minutes of receiving the payload"
# (https://docs.slack.dev/interactivity/handling-user-interaction).
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60.0


@dataclass
class ApiCall:
    method: str  # "chat.postMessage"
    args: dict  # query + form fields / JSON body; JSON-looking form values decoded
    token: str | None  # from "Authorization: Bearer ..." or the "token" form field
    at: float  # FakeSlack.clock()
    error: str | None = None  # set when the fake answered ok=false (scripted, auth or model)


@dataclass
class WebhookPost:
    key: str  # the path key of the response_url
    body: dict  # the JSON posted
    at: float
    error: str | None = None  # set when the post was refused (fail_next or the model)


@dataclass(frozen=True)
class ResponseTarget:
    """Where the messages posted to a response_url land, as Slack knows from the
    interaction that issued it: the conversation, the person, and for a click the message
    the button was in (``ephemeral``: one only that person sees; ``message_ts`` is then
    the ID the fake gave it)."""

    channel: str
    user: str
    message_ts: str | None = None
    ephemeral: bool = False


@dataclass
class _Failure:
    error: str
    status: int | None
    retry_after: int | None


class _Refused(Exception):
    """Raised by the model to answer {"ok": false, "error": error, **extra}."""

    def __init__(self, error: str, extra: dict | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra or {}


class FakeSlack:
    def __init__(
        self,
        *,
        bot_user_id: str = "UBOT",
        team_id: str = "T0001",
        bot_token: str = "xoxb-test",
        clock: Callable[[], float] = time.monotonic,
        rate_limits: bool = True,
    ):
        self.bot_user_id, self.team_id, self.bot_token = bot_user_id, team_id, bot_token
        # Every time-based rule (trigger expiry, rate limits, response_url) reads this clock,
        # so tests can drive time without sleeping.
        self.clock = clock
        # Per-method sliding windows (fakes/rate_tiers.py); switch off with False.
        # ``limiter.per_minute`` / ``limiter.post_burst`` may be changed by a test.
        self.rate_limits = rate_limits
        self.limiter = RateLimiter()
        # response_url key -> when it was issued (first ``response_url(key)`` or first post)
        self._response_issued: dict[str, float] = {}
        self._response_uses: dict[str, int] = defaultdict(int)  # key -> accepted posts
        # response_url key -> where its messages land; a URL issued without one (a test
        # building it by hand) is recorded and answered but changes no conversation.
        self._response_targets: dict[str, ResponseTarget] = {}
        self.tokens: set[str] = {bot_token}  # tokens accepted by the Web API
        self.latency = 0.0
        # method -> a gate its calls wait at until it opens (``hold``): a Slack that is
        # slow for one method only, for tests of what must not wait for it.
        self._holds: dict[str, asyncio.Event] = {}
        self.calls: list[ApiCall] = []
        self.posts: list[WebhookPost] = []
        self.uploads: dict[str, bytes] = {}  # file ID -> bytes POSTed to its upload URL
        # {"id", "title", "filename", "channel_id", "initial_comment", "thread_ts", "content"}
        self.files: list[dict] = []
        self._pending_files: dict[str, str] = {}  # file ID -> filename, until completed
        self.views: dict[str, dict] = {}  # view ID -> {"id": view ID, **view} (modals)
        self.home: dict[str, dict] = {}  # user ID -> {"id": view ID, **view} (Home tabs)
        self._triggers: dict[str, float] = {}  # trigger_id -> when issued (self.clock)
        self._used_triggers: set[str] = set()
        self.usergroups: dict[str, list[str]] = {}  # usergroup ID -> user IDs; set by tests
        # People, user groups and channels by the names typed after "@" / "#": what the
        # request builder (fakes/inbound.py) turns into Slack's tokens.
        self.directory = Directory(self)
        self.ephemerals: list[dict] = []  # {"channel", "user", "text", "blocks", "thread_ts"}
        # {"id", "name", "is_private", "is_archived", "is_member", "members": set[str]}
        self.channels: dict[str, dict] = {}
        self._removed: set[str] = set()
        self._messages: dict[str, list[dict]] = defaultdict(list)  # channel -> in post order
        self.base_url = ""
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._changed = asyncio.Event()
        self.version = 0  # counts every change a reader can see (calls, posts, the model)
        self._ids = itertools.count(1)
        self._last_us = 0
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)  # file uploads
        self.add_routes(app.router)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Serve the fake's routes from another aiohttp app (the local chat surface mounts
        them on the app's own server); set ``base_url`` to that server's address."""
        router.add_route("*", "/api/{method}", self._api)
        router.add_post("/response/{key}", self._webhook)
        router.add_post("/upload/{file_id}", self._upload)

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

    def response_url(self, key: str = "r1", target: ResponseTarget | None = None) -> str:
        """The URL of response_url `key`; its 30 minutes start at the first call (or at its
        first post when a test builds the URL itself). With `target`, what is posted to it
        lands in that conversation as Slack would put it there (``deliver``)."""
        self._response_issued.setdefault(key, self.clock())
        if target is not None:
            self._response_targets[key] = target
        return f"{self.base_url}/response/{key}"

    def new_trigger_id(self) -> str:
        """Mint a trigger_id shaped like Slack's ("<digits>.<digits>.<hex>") and record when
        it was issued: views.open / views.push accept it once, within 3 seconds."""
        n = next(self._ids)
        trigger_id = f"{1_000_000 + n}.{98765 + n}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = self.clock()
        return trigger_id

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

    # ---- channels & messages -------------------------------------------------------------
    def add_channel(
        self,
        channel_id: str,
        name: str = "general",
        *,
        is_private: bool = False,
        is_member: bool = True,
        is_archived: bool = False,
        members: Iterable[str] = (),
    ) -> dict:
        """Register (or replace) a channel; `members` are the humans in it (the bot is added
        when `is_member`). Returns the live dict, which tests may change further."""
        self._removed.discard(channel_id)
        channel = {
            "id": channel_id,
            "name": name,
            "is_private": is_private,
            "is_archived": is_archived,
            "is_member": is_member,
            "members": set(members) | ({self.bot_user_id} if is_member else set()),
        }
        self.channels[channel_id] = channel
        return channel

    def remove_channel(self, channel_id: str) -> None:
        """Make `channel_id` unknown to Slack: every call naming it gets channel_not_found."""
        self.channels.pop(channel_id, None)
        self._removed.add(channel_id)

    def people_say(self, channel: str, texts: Iterable[str], user: str = "U0PERSON1") -> None:
        """Messages people post in `channel` (not through the app, so no rate limit applies):
        a busy channel's history, for tests of searching it."""
        for text in texts:
            msg = {"type": "message", "ts": self._next_ts(), "user": user, "text": text}
            self._messages[channel].append(msg | {"channel": channel})
        self._touch()

    def messages(self, channel: str) -> list[dict]:
        """Copies of every message stored in `channel` (top-level and replies), in post order.
        A user ID names the app's DM with that user (where chat.postMessage put them)."""
        return copy.deepcopy(self._messages.get(_dm_of(channel), []))

    def top_level(self, channel: str) -> list[dict]:
        """Copies of the messages of `channel` that are not thread replies, in post order
        (broadcast replies are replies: history shows them, this does not)."""
        return [m for m in self.messages(channel) if _is_top_level(m)]

    def thread(self, channel: str, ts: str) -> list[dict]:
        """Copies of the thread `ts` names in `channel`: the parent first, then the replies."""
        return copy.deepcopy(self._thread(_dm_of(channel), ts))

    def add_message(
        self,
        channel: str,
        text: str = "hello",
        *,
        user: str = "U123",
        thread_ts: str | None = None,
        blocks: list | None = None,
    ) -> dict:
        """Store a message someone else (by default a person, `user`) posted in `channel`,
        as if Slack had it; return it. The app cannot chat.update it (cant_update_message)."""
        channel = _dm_of(channel)
        msg: dict[str, Any] = {
            "type": "message",
            "ts": self._next_ts(),
            "channel": channel,
            "text": text,
            "blocks": blocks or [],
            "user": user,
        }
        if thread_ts:
            msg["thread_ts"] = thread_ts
        self._messages[channel].append(msg)
        self._count_replies(channel, thread_ts)
        self._touch()
        return copy.deepcopy(msg)

    def close_view(self, view_id: str) -> None:
        """The person closed the modal `view_id` (or the app's answer to its submission
        closed it): it is no longer open, and the one under it, if any, shows again."""
        if self.views.pop(view_id, None) is not None:
            self._touch()

    def deliver(self, target: ResponseTarget, body: dict) -> ResponseTarget:
        """Put a message response where Slack would: a post to a response_url, or the body
        of a slash command's acknowledgement (which Slack treats the same way).

        Source: "Handling user interaction", Message responses
        (https://docs.slack.dev/interactivity/handling-user-interaction): ``response_type``
        ``in_channel`` posts for everyone, otherwise (the default, ``ephemeral``) only the
        person sees it; ``replace_original: true`` replaces the message the interaction came
        from, ephemeral or not ("Modifying messages": a response_url "can also be used to
        update the original interactive message, regardless of whether it was an ephemeral
        message or not"); ``delete_original: true`` deletes it; ``thread_ts`` puts it in a
        thread. Raises _Refused as chat.postMessage would when the conversation is gone.

        Returns the target for the URL's next post. A slash command has no original
        message, so its first answer becomes the one a later ``replace_original`` replaces:
        apps show a placeholder and then the result this way (an assumption: Slack's pages
        describe replacing for interactions, and public apps rely on it for commands)."""
        new_ts: str | None = None
        if _truthy(body.get("delete_original")):
            self._drop_original(target)
        elif _truthy(body.get("replace_original")) and target.message_ts:
            self._replace_original(target, body)
        elif body.get("response_type") == "in_channel":
            new_ts = self._post(target.channel, body)["ts"]
        else:
            new_ts = self._add_ephemeral(target.channel, target.user, body)
        self._touch()
        if target.message_ts is None and new_ts is not None:
            in_channel = body.get("response_type") == "in_channel"
            return ResponseTarget(target.channel, target.user, new_ts, ephemeral=not in_channel)
        return target

    def _drop_original(self, target: ResponseTarget) -> None:
        if target.ephemeral:
            self.ephemerals = [e for e in self.ephemerals if e["id"] != target.message_ts]
            return
        channel = _dm_of(target.channel)
        kept = [m for m in self._messages.get(channel, []) if m["ts"] != target.message_ts]
        self._messages[channel] = kept

    def _replace_original(self, target: ResponseTarget, body: dict) -> None:
        if target.ephemeral:
            original = next((e for e in self.ephemerals if e["id"] == target.message_ts), None)
        else:
            original = self._find(_dm_of(target.channel), target.message_ts or "")
        if original is None:
            return  # gone already: Slack has nothing to replace either
        original["text"] = body.get("text") or ""
        original["blocks"] = body.get("blocks") or []
        if body.get("attachments") is not None:
            original["attachments"] = body["attachments"]

    async def changed_since(self, version: int, timeout: float) -> int:
        """Wait (at most `timeout` seconds) until the fake's version passes `version`;
        return the version then. For readers that show the fake live."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.version <= version:
                    await self._changed.wait()
        return self.version

    async def wait_for_messages(self, channel: str, n: int = 1, timeout: float = 5.0) -> list[dict]:
        """Wait until `channel` holds at least `n` messages (replies count); return them all."""
        what = f"messages in {channel}"
        return await self._wait(lambda: self.messages(channel), n, timeout, what)

    def hold(self, method: str) -> asyncio.Event:
        """Calls to ``method`` wait until the returned event is set (then answer as usual)."""
        gate = self._holds[method] = asyncio.Event()
        return gate

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
        self._touch()

    def touch(self) -> None:
        """Something a reader shows changed (a surface's own state, say): wake waiters."""
        self._touch()

    def _touch(self) -> None:
        self.version += 1
        self._changed.set()  # wake every waiter, then re-arm
        self._changed = asyncio.Event()

    def _next_ts(self) -> str:
        """Like Slack's: the posting time in microseconds, unique and increasing, so that
        a search of history by time (``oldest``) behaves as it does on Slack."""
        self._last_us = max(int(time.time() * 1_000_000), self._last_us + 1)
        sec, frac = divmod(self._last_us, 1_000_000)
        return f"{sec}.{frac:06d}"

    # ---- handlers ------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.latency)
        method = request.match_info["method"]
        if (gate := self._holds.get(method)) is not None:
            await gate.wait()
        args, token = await _read_args(request)
        call = ApiCall(method, args, token, self.clock())
        if token is None:
            call.error = "not_authed"
        elif token not in self.tokens:
            call.error = "invalid_auth"
        resp = self._scripted_failure(method, call)  # scripted failures win over the model
        if resp is None and call.error is None:
            resp = self._rate_limited(method, args, call)
        body: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        if resp is None and call.error is None:
            try:
                body = {"ok": True, **self._answer(method, args)}
            except _Refused as refused:
                call.error, extra = refused.error, refused.extra
        self._record(call)  # after the model changed, so waiters see its new state
        if resp:
            return resp
        if call.error:
            return web.json_response({"ok": False, "error": call.error, **extra})
        return web.json_response(body)

    def _rate_limited(self, method: str, a: dict, call: ApiCall) -> web.Response | None:
        """HTTP 429 ``ratelimited`` with Retry-After when `method` is over its limit
        (fakes/rate_tiers.py has the limits and their sources)."""
        if not self.rate_limits:
            return None
        channel = a.get("channel") if method == "chat.postMessage" else None
        retry_after = self.limiter.check(method, channel, call.at)
        if retry_after is None:
            return None
        call.error = "ratelimited"
        body = {"ok": False, "error": "ratelimited"}
        return web.json_response(body, status=429, headers={"Retry-After": str(retry_after)})

    async def _webhook(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.latency)
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        post = WebhookPost(request.match_info["key"], body, self.clock())
        resp = self._scripted_failure("response_url", post)
        if resp is None:
            status, text = self._respond(post)
            if status != 200:
                post.error = text
            resp = web.Response(status=status, text=text)
        self._record(post)
        return resp

    def _respond(self, post: WebhookPost) -> tuple[int, str]:
        """Slack's answer to a response_url post: (HTTP status, plain text body).

        Incoming webhooks and response_urls answer errors as an HTTP status and a plain
        text error code ("Improving error conditions for Incoming Webhooks",
        https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks:
        400 invalid_payload ...); a block error comes back as 400 "invalid_blocks" (seen in
        sourcegraph/sourcegraph#49979). Past its 5 uses or 30 minutes a response_url is
        refused; Slack documents the limit but not the answer, so the fake uses the codes
        public clients observed: "used_url" (gchristov/thecodinglove-kmp, a slash-command
        handler acknowledging it) and "expired_url" (getsentry/sentry handles Slack's
        "Expired url"), with HTTP 404, an assumption."""
        key, body = post.key, post.body
        issued = self._response_issued.setdefault(key, post.at)
        if post.at - issued > RESPONSE_URL_TTL:
            return 404, "expired_url"
        if self._response_uses[key] >= RESPONSE_URL_USES:
            return 404, "used_url"
        if not isinstance(body, dict):
            return 400, "invalid_payload"
        if not _truthy(body.get("delete_original")):
            if not any(body.get(k) for k in ("text", "blocks", "attachments")):
                return 400, "no_text"
            if "blocks" in body and message_errors(body["blocks"]):
                return 400, "invalid_blocks"
            if isinstance(body.get("text"), str) and len(body["text"]) > TEXT_MAX:
                return 400, "msg_too_long"
        target = self._response_targets.get(key)
        if target is not None:
            try:
                self._response_targets[key] = self.deliver(target, body)
            except _Refused as refused:  # the conversation is gone: Slack has nowhere to post
                return 404, refused.error
        self._response_uses[key] += 1
        return 200, "ok"

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
                    "bot_id": BOT_ID,
                }
            case "chat.postMessage":
                msg = self._post(channel, a)
                channel = msg["channel"]  # a user ID posts to the app's DM with that user
                return {"channel": channel, "ts": msg["ts"], "message": _public(msg, True)}
            case "chat.update":
                msg = self._update(channel, a)
                return {
                    "channel": channel,
                    "ts": msg["ts"],
                    "text": msg["text"],
                    "message": _public(msg, True),
                }
            case "chat.postEphemeral":
                return {"message_ts": self._post_ephemeral(channel, a)}
            case "chat.getPermalink":
                p_ts = "p" + str(a.get("message_ts", "")).replace(".", "")
                return {"channel": channel, "permalink": f"{_WEB}archives/{channel}/{p_ts}"}
            case "conversations.open":
                users = str(a.get("users") or "")
                if not users or "," in users:
                    raise _Refused("users_list_not_supplied" if not users else "not_implemented")
                return {"channel": {"id": "D" + users}}
            case "conversations.join":
                return self._join(channel)
            case "conversations.leave":
                ch = self._channel(channel)
                if not ch["is_member"]:
                    return {"not_in_channel": True}
                ch["is_member"] = False
                ch["members"].discard(self.bot_user_id)
                return {}
            case "conversations.info":
                return {"channel": self._info(self._channel(channel))}
            case "conversations.members":
                ch = self._channel(channel)
                humans = ch["members"] - {self.bot_user_id}
                members = sorted(humans | ({self.bot_user_id} if ch["is_member"] else set()))
                page, cursor = _page(members, a, key=str)
                return {"members": page, "response_metadata": {"next_cursor": cursor}}
            case "users.conversations":
                return self._users_conversations(a)
            case "conversations.history":
                return self._history(channel, a)
            case "conversations.replies":
                self._readable(channel)
                _not_a_user(channel)
                thread = self._thread(channel, str(a.get("ts") or ""))
                if not thread:
                    raise _Refused("thread_not_found")
                parent, replies = thread[:1], _between(thread[1:], a)
                page, cursor = _page(parent + replies, a, key=_ts_of)
                messages = [_public(m, _truthy(a.get("include_all_metadata"))) for m in page]
                return {
                    "messages": messages,
                    "has_more": bool(cursor),
                    "response_metadata": {"next_cursor": cursor},
                }
            case "users.info":
                return {"user": self._user_info(a)}
            case "views.open" | "views.push":
                trigger_id = self._trigger(a.get("trigger_id"))
                view = _view(a, f"V{next(self._ids):04d}", method)
                self._used_triggers.add(trigger_id)
                self.views[view["id"]] = view
                return {"view": view}
            case "views.update":
                view_id = a.get("view_id")
                view = _view(a, view_id, method)
                if view_id in self.views:
                    self.views[view_id] = view
                else:
                    user = next((u for u, v in self.home.items() if v["id"] == view_id), None)
                    if not view_id or user is None:
                        raise _Refused("not_found")
                    self.home[user] = view
                return {"view": view}
            case "views.publish":
                user_id = a.get("user_id")
                if not isinstance(user_id, str) or not user_id:
                    raise _Refused("invalid_arguments")
                # A user's Home tab keeps its view ID when republished.
                view_id = self.home.get(user_id, {}).get("id") or f"V{next(self._ids):04d}"
                self.home[user_id] = _view(a, view_id, method)
                return {"view": self.home[user_id]}
            case "usergroups.users.list":
                group = a.get("usergroup")
                if not isinstance(group, str) or group not in self.usergroups:
                    raise _Refused("no_such_subteam")
                return {"users": list(self.usergroups[group])}
            case "files.getUploadURLExternal":
                if not a.get("filename") or not str(a.get("length", "")).isdigit():
                    raise _Refused("invalid_arguments")
                file_id = f"F{next(self._ids):04d}"
                self._pending_files[file_id] = str(a["filename"])
                return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}
            case "files.completeUploadExternal":
                return {"files": self._complete_upload(a)}
        return {}

    def _trigger(self, trigger_id: Any) -> str:
        """The trigger_id of views.open / views.push, if Slack would accept it.

        Source: the errors tables of https://docs.slack.dev/reference/methods/views.open and
        .../views.push: invalid_trigger_id, expired_trigger_id, exchanged_trigger_id ("The
        trigger_id was already exchanged in a previous call"); "Handling user interaction"
        (https://docs.slack.dev/interactivity/handling-user-interaction): triggers "expire in
        three seconds" and "may only be used once". That guide names the errors
        trigger_expired / trigger_exchanged; the fake answers with the methods' own codes."""
        if not isinstance(trigger_id, str) or trigger_id not in self._triggers:
            raise _Refused("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise _Refused("exchanged_trigger_id")
        if self.clock() - self._triggers[trigger_id] > TRIGGER_TTL:
            raise _Refused("expired_trigger_id")
        return trigger_id

    # ---- the channel & message model -----------------------------------------------------
    def _channel(self, channel_id: Any) -> dict:
        """The channel `channel_id` names; an unknown one becomes a public channel with the bot."""
        if not isinstance(channel_id, str) or not channel_id or channel_id in self._removed:
            raise _Refused("channel_not_found")
        return self.channels.get(channel_id) or self.add_channel(channel_id)

    def _postable(self, channel_id: Any) -> None:
        if _is_dm(channel_id):
            return
        ch = self._channel(channel_id)
        if ch["is_archived"]:
            raise _Refused("is_archived")
        if not ch["is_member"]:
            raise _Refused("not_in_channel")

    def _readable(self, channel_id: Any) -> None:
        if not _is_dm(channel_id) and not self._channel(channel_id)["is_member"]:
            raise _Refused("not_in_channel")

    def _info(self, ch: dict) -> dict:
        humans = ch["members"] - {self.bot_user_id}
        return {
            "id": ch["id"],
            "name": ch["name"],
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_private": ch["is_private"],
            "is_archived": ch["is_archived"],
            "is_member": ch["is_member"],
            "num_members": len(humans) + (1 if ch["is_member"] else 0),
        }

    def _join(self, channel_id: Any) -> dict:
        ch = self._channel(channel_id)
        if ch["is_archived"]:
            raise _Refused("is_archived")
        if ch["is_private"]:
            raise _Refused("method_not_supported_for_channel_type")
        already = ch["is_member"]
        ch["is_member"] = True
        ch["members"].add(self.bot_user_id)
        return {"channel": self._info(ch)} | ({"warning": "already_in_channel"} if already else {})

    def _find(self, channel: str, ts: str) -> dict | None:
        return next((m for m in self._messages.get(channel, []) if m["ts"] == ts), None)

    def _thread(self, channel: str, ts: str) -> list[dict]:
        """The thread that `ts` (its parent or one of its replies) names: parent first."""
        hit = self._find(channel, ts)
        root = hit.get("thread_ts", hit["ts"]) if hit else ts
        return [m for m in self._messages.get(channel, []) if root in (m["ts"], m.get("thread_ts"))]

    def _post(self, channel: Any, a: dict) -> dict:
        self._postable(channel)
        if not any(a.get(k) for k in ("text", "blocks", "attachments")):
            raise _Refused("no_text")
        _check_content(a)
        metadata = _metadata(a)
        msg: dict[str, Any] = {
            "type": "message",
            "ts": self._next_ts(),
            "channel": _dm_of(channel),
            "text": a.get("text") or "",
            "blocks": a.get("blocks") or [],
            "user": self.bot_user_id,
            "bot_id": BOT_ID,
        }
        if a.get("attachments"):
            msg["attachments"] = a["attachments"]
        if a.get("thread_ts"):
            # Stored as sent: a thread_ts naming no parent makes an orphan reply, as in Slack.
            msg["thread_ts"] = str(a["thread_ts"])
            if _truthy(a.get("reply_broadcast")):
                msg["reply_broadcast"] = True
                msg["subtype"] = "thread_broadcast"
        if metadata is not None:
            msg["metadata"] = metadata
        channel = msg["channel"]
        parent = self._find(channel, msg.get("thread_ts", ""))
        if parent is not None and _is_top_level(parent):
            msg["parent_user_id"] = parent["user"]
        self._messages[channel].append(msg)
        self._count_replies(channel, msg.get("thread_ts"))
        return msg

    def _count_replies(self, channel: str, thread_ts: str | None) -> None:
        """Keep a thread parent's reply fields as Slack shows them."""
        parent = self._find(channel, thread_ts or "")
        if parent is None or not _is_top_level(parent):
            return
        replies = self._thread(channel, parent["ts"])[1:]
        users = sorted({m["user"] for m in replies})
        parent |= {
            "thread_ts": parent["ts"],
            "reply_count": len(replies),
            "reply_users": users,
            "reply_users_count": len(users),
            "latest_reply": replies[-1]["ts"],
        }

    def _post_ephemeral(self, channel: Any, a: dict) -> str:
        """Store an ephemeral message; return its message_ts. The user must be in the channel
        when the channel's members are known (it names any human besides the bot)."""
        self._postable(channel)
        user = a.get("user")
        if not isinstance(user, str) or not user:
            raise _Refused("user_not_found")
        if not _is_dm(channel):
            humans = self._channel(channel)["members"] - {self.bot_user_id}
            if humans and user not in humans:
                raise _Refused("user_not_in_channel")
        if not any(a.get(k) for k in ("text", "blocks", "attachments")):
            raise _Refused("no_text")
        _check_content(a)
        return self._add_ephemeral(channel, user, a)

    def _add_ephemeral(self, channel: str, user: str, a: dict) -> str:
        """Store a message only `user` sees; its ID is the message_ts Slack answers."""
        message_ts = self._next_ts()
        self.ephemerals.append(
            {
                "id": message_ts,
                "channel": channel,
                "user": user,
                "text": a.get("text") or "",
                "blocks": a.get("blocks") or [],
                "thread_ts": str(a["thread_ts"]) if a.get("thread_ts") else None,
            }
        )
        return message_ts

    def _complete_upload(self, a: dict) -> list[dict]:
        """files.completeUploadExternal: check everything, then record each file in `files`."""
        files = a.get("files")
        if not isinstance(files, list) or not files or not all(isinstance(f, dict) for f in files):
            raise _Refused("invalid_arguments")
        channel_id = a.get("channel_id") or None
        channels = [c for c in str(a.get("channels") or "").split(",") if c]
        for target in ([channel_id] if channel_id else []) + channels:
            self._postable(target)
        if any(f.get("id") not in self._pending_files for f in files):
            raise _Refused("file_not_found")
        done = []
        for f in files:
            filename = self._pending_files.pop(f["id"])
            title = f.get("title") or filename
            content = self.uploads.get(f["id"], b"")
            self.files.append(
                {
                    "id": f["id"],
                    "title": title,
                    "filename": filename,
                    "channel_id": channel_id,
                    "initial_comment": a.get("initial_comment"),
                    "thread_ts": str(a["thread_ts"]) if a.get("thread_ts") else None,
                    "content": content,
                    "ts": self._next_ts(),  # when it was shared, to place it in the channel
                }
            )
            done.append({"id": f["id"], "title": title, "name": filename, "size": len(content)})
        return done

    def _update(self, channel: Any, a: dict) -> dict:
        """chat.update (https://docs.slack.dev/reference/methods/chat.update, errors):
        channel_not_found for a user ID instead of the DM's ID, message_not_found,
        cant_update_message for a message the app did not post, no_text, and the content
        rules of chat.postMessage."""
        _not_a_user(channel)
        self._postable(channel)
        msg = self._find(channel, str(a.get("ts") or ""))
        if msg is None:
            raise _Refused("message_not_found")
        if msg.get("user") != self.bot_user_id:
            raise _Refused("cant_update_message")
        if all(a.get(k) is None for k in ("text", "blocks", "attachments")):
            raise _Refused("no_text")
        _check_content(a)
        metadata = _metadata(a)
        for key in ("text", "blocks", "attachments"):
            if a.get(key) is not None:
                msg[key] = a[key]
        if metadata is not None:
            msg["metadata"] = metadata
        return msg

    def _user_info(self, a: dict) -> dict:
        """users.info (docs.slack.dev/reference/methods/users.info): a user object; its
        ``locale`` only when asked with ``include_locale=true`` ("If you don't include the
        parameter, no locale will be provided": api.slack.com/changelog/2017-09-locale-
        locale-locale). An ID that is no one's is ``user_not_found``."""
        user_id = str(a.get("user") or "")
        if not user_id or user_id[0] not in "UWB":
            raise _Refused("user_not_found")
        person = self.directory.person(user_id)
        user = {
            "id": person.id,
            "team_id": person.team_id or self.team_id,
            "name": person.name,
            "real_name": person.name,
            "deleted": False,
            "is_bot": person.id == self.bot_user_id,
            "tz": "Asia/Tokyo",
        }
        if _truthy(a.get("include_locale")):
            user["locale"] = person.locale
        return user

    def _users_conversations(self, a: dict) -> dict:
        """users.conversations (docs.slack.dev/reference/methods/users.conversations):
        "Browse the public channel membership of other users with the user parameter.
        Private channel membership is only listed when the calling user, bot user, or app
        shares membership"; ``types`` defaults to public_channel; ``limit`` at most 999;
        is_member and num_members are omitted from the answer."""
        user = str(a.get("user") or self.bot_user_id)
        types = set(str(a.get("types") or "public_channel").split(","))
        wanted = []
        for ch in sorted(self.channels.values(), key=lambda c: c["id"]):
            kind = "private_channel" if ch["is_private"] else "public_channel"
            if kind not in types or user not in ch["members"]:
                continue
            if ch["is_private"] and not ch["is_member"]:
                continue  # not shared with the app: not listed
            if _truthy(a.get("exclude_archived")) and ch["is_archived"]:
                continue
            info = self._info(ch)
            wanted.append({k: v for k, v in info.items() if k not in ("is_member", "num_members")})
        try:
            limit = int(a.get("limit") or 100)
        except (TypeError, ValueError):
            limit = 100
        if limit > 999:
            raise _Refused("invalid_limit")
        page, cursor = _page(wanted, a | {"limit": limit}, key=lambda c: c["id"])
        return {"channels": page, "response_metadata": {"next_cursor": cursor}}

    def _history(self, channel: Any, a: dict) -> dict:
        self._readable(channel)
        _not_a_user(channel)
        # Slack shows top-level messages and broadcast replies in the channel, newest first.
        shown = [
            m
            for m in self._messages.get(channel, [])
            if _is_top_level(m) or m.get("reply_broadcast")
        ]
        shown = sorted(_between(shown, a), key=lambda m: Decimal(m["ts"]), reverse=True)
        page, cursor = _page(shown, a, key=_ts_of)
        with_metadata = _truthy(a.get("include_all_metadata"))
        return {
            "messages": [_public(m, with_metadata) for m in page],
            "has_more": bool(cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }


def _dm_of(channel: Any) -> Any:
    """Where a message to `channel` lands: a user ID ("U…"/"W…") means the app's DM with that
    user, whose ID is "D" + the user ID here (as conversations.open answers). chat.postMessage
    reference, argument channel: a user ID posts to the app's DM (the `channel` answered is
    the DM's ID)."""
    if isinstance(channel, str) and channel[:1] in ("U", "W"):
        return "D" + channel
    return channel


def _is_dm(channel: Any) -> bool:
    """A user ID (chat.postMessage opens the DM) or a DM channel from conversations.open."""
    return isinstance(channel, str) and channel[:1] in ("U", "W", "D")


def _is_top_level(msg: dict) -> bool:
    return msg.get("thread_ts", msg["ts"]) == msg["ts"]


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true")


def _ts_of(msg: dict) -> str:
    return msg["ts"]


def _public(msg: dict, with_metadata: bool) -> dict:
    """A message as the Web API returns it: no "channel" key, metadata only when asked."""
    drop = {"channel"} | (set() if with_metadata else {"metadata"})
    return copy.deepcopy({k: v for k, v in msg.items() if k not in drop})


def _view(a: dict, view_id: Any, method: str) -> dict:
    """The `view` argument of views.* as Slack answers it: ``{"id": view_id, **view}``.

    An invalid view gets ``invalid_arguments`` with the details in
    ``response_metadata.messages``: the views.* reference pages list invalid_arguments (not
    invalid_blocks) and show that answer ("missing required field: title", views.push)."""
    view = a.get("view")
    if not isinstance(view, dict) or not view.get("type"):
        raise _Refused("invalid_arguments")
    errors = view_errors(view, method)
    if errors:
        raise _Refused(
            "invalid_arguments", {"response_metadata": {"messages": slack_messages(errors)}}
        )
    return {"id": view_id, **{k: v for k, v in view.items() if k != "id"}}


def _not_a_user(channel: Any) -> None:
    """A user ID is not a conversation ID: chat.update's reference says "For direct messages,
    ensure that this value is a DM ID (starts with D) instead of a User ID (starts with either
    U or W)" (https://api.slack.com/methods/chat.update, argument channel); conversations.*
    take a "Conversation ID" too. Only chat.postMessage / postEphemeral accept a user ID."""
    if isinstance(channel, str) and channel[:1] in ("U", "W"):
        raise _Refused("channel_not_found")


def _check_content(a: dict) -> None:
    """The message content rules shared by chat.postMessage / postEphemeral / update."""
    blocks = a.get("blocks")
    if isinstance(blocks, str) and blocks:
        # chat.postMessage errors: invalid_blocks_format, "The blocks is not a valid JSON
        # object or doesn't match the Block Kit syntax."
        raise _Refused("invalid_blocks_format")
    if blocks is not None:
        errors = message_errors(blocks)
        if errors:
            # chat.postMessage errors: invalid_blocks ("Blocks submitted with this message are
            # not valid"); Slack adds the details as below (slackapi/java-slack-sdk#1017).
            raise _Refused(
                "invalid_blocks",
                {"errors": errors, "response_metadata": {"messages": slack_messages(errors)}},
            )
    text = a.get("text")
    if isinstance(text, str) and len(text) > TEXT_MAX:
        raise _Refused("msg_too_long")  # see TEXT_MAX


def _metadata(a: dict) -> dict | None:
    """The decoded `metadata` argument (JSON string or object), None when absent."""
    value = a.get("metadata")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Refused("invalid_metadata_format") from None
    if not (
        isinstance(value, dict)
        and isinstance(value.get("event_type"), str)
        and isinstance(value.get("event_payload", {}), dict)
    ):
        raise _Refused("invalid_metadata_format")
    return value


def _between(messages: list[dict], a: dict) -> list[dict]:
    """Filter by the `oldest` / `latest` / `inclusive` arguments of conversations.*."""

    def bound(name: str) -> Decimal | None:
        value = a.get(name)
        if value is None or value == "":
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise _Refused(f"invalid_ts_{name}") from None

    oldest, latest = bound("oldest"), bound("latest")
    inclusive = _truthy(a.get("inclusive"))

    def keep(m: dict) -> bool:
        ts = Decimal(m["ts"])
        if oldest is not None and (ts < oldest if inclusive else ts <= oldest):
            return False
        return latest is None or (ts <= latest if inclusive else ts < latest)

    return [m for m in messages if keep(m)]


def _page(items: list, a: dict, *, key: Callable[[Any], str]) -> tuple[list, str]:
    """One page of `items` (already in answer order) per `limit` / `cursor`, and the next
    cursor ("" on the last page). The cursor names the first item of the next page."""
    try:
        limit = int(a.get("limit") or 100)
    except (TypeError, ValueError):
        limit = 100
    limit = min(max(limit, 1), 1000)
    start = 0
    if a.get("cursor"):
        try:
            after = base64.b64decode(str(a["cursor"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise _Refused("invalid_cursor") from None
        wanted = after.removeprefix("next:")
        start = next((i for i, item in enumerate(items) if key(item) == wanted), -1)
        if not after.startswith("next:") or start < 0:
            raise _Refused("invalid_cursor")
    page, rest = items[start : start + limit], items[start + limit :]
    cursor = base64.b64encode(f"next:{key(rest[0])}".encode()).decode() if rest else ""
    return page, cursor


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
