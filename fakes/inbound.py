"""Requests into the app exactly as Slack sends them, signed, for ``app.async_dispatch``.

One builder for everything Slack sends the app: slash commands, button clicks
(``block_actions``), modal submissions (``view_submission``) and Events API deliveries
(``app_mention``, ``app_home_opened``, or any event). A test writes what the person typed
and saw; the builder sends what Slack would::

    slack = Inbound(fake_slack, SIGNING_SECRET)
    fake_slack.directory.add_user("U0ONCALL1", "oncall")
    request = slack.command("watch J1 alert failed>5% notify @oncall")
    # text=watch J1 alert failed&gt;5% notify <@U0ONCALL1|oncall>
    await app.async_dispatch(request)

    await app.async_dispatch(slack.click("job_refresh", value))            # in a channel message
    await app.async_dispatch(slack.click("job_refresh", value, where="ephemeral"))
    await app.async_dispatch(slack.submit(view=fake_slack.views[view_id], values={...}))
    first = slack.mention("@otajob J1", event_id="Ev1")
    await app.async_dispatch(first)
    await app.async_dispatch(slack.retry(first, 1))                         # same body, again

Given a FakeSlack, trigger_ids come from ``fake.new_trigger_id()`` (so ``views.open``
accepts them once, within 3 s, like Slack), response_urls from ``fake.response_url(key)``,
names from ``fake.directory`` (fakes/directory.py) and channel names from the fake's
channel model.

Sources (each behaviour below names its own):
- [slash] https://api.slack.com/interactivity/slash-commands (payload fields; "Escape
  channels, users, and links sent to your app", the manifest's ``should_escape``)
- [format] https://api.slack.com/reference/surfaces/formatting ("Escaping text": `&`, `<`,
  `>` and only those; mentions ``<@U…>``, ``<!subteam^S…>``, ``<!here>``) and the older
  https://api.slack.com/docs/formatting ("All text in Slack uses the same system of
  escaping"; URL detection by the server: ``<http://foo.com/>``,
  ``<http://www.foo.com|www.foo.com>``; names after a pipe: ``<@U024BE7LH|bob>``)
- [actions] https://api.slack.com/reference/interaction-payloads/block-actions
- [views] https://api.slack.com/reference/interaction-payloads/views
- [events] https://api.slack.com/apis/events-api ("Events dispatched as JSON",
  "Authorizations", "Retries")
- [connect] https://api.slack.com/apis/channels-between-orgs ("Slash commands are not
  shared", external members)
- [signing] https://api.slack.com/authentication/verifying-requests-from-slack
- [captured] payloads Slack really sent, published in public code: a ``block_actions``
  from a ``chat.postEphemeral`` message (``container.is_ephemeral: true``, a ``channel``
  named ``privategroup``, and no ``message``), slash commands from a DM
  (``channel_name=directmessage``), message events from Slack Connect members
  (``user_team`` / ``source_team``) and mentions written ``<@U…>`` in event text.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from fakes.directory import DEFAULT_USER_ID, DEFAULT_USER_NAME, Person
from fakes.slack import BOT_ID, ResponseTarget

if TYPE_CHECKING:
    from fakes.directory import Directory
    from fakes.slack import FakeSlack

FORM = "application/x-www-form-urlencoded"  # [slash], [actions]: interactivity is a form post
JSON = "application/json"  # [events]: "The event will be in the Content-Type: application/json"
VERIFICATION_TOKEN = "verification-token"  # the deprecated `token` field, still sent [slash]
RETRY_REASONS = frozenset(  # [events] "Retries": the values of X-Slack-Retry-Reason
    {
        "http_timeout",
        "too_many_redirects",
        "connection_failed",
        "ssl_error",
        "http_error",
        "unknown_error",
    }
)
_serial = itertools.count(1)
_last_us = [0]


# ---- text: what a person typed, as Slack sends it ----------------------------------------


def escape(text: str) -> str:
    """[format] "Escaping text": `&`, `<`, `>` become entities, and nothing else does."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Part:
    """A piece of a typed text: plain ``text``, or what Slack made of it: ``user``,
    ``usergroup``, ``channel``, ``broadcast`` (@here/@channel/@everyone), ``link``, or a
    ``token`` the person pasted as it is."""

    kind: str
    value: str  # the text, the ID, the broadcast word, the URL, the pasted token
    label: str = ""  # a user's or channel's name, a group's handle, a link's typed text
    private: bool = False  # a channel the person sees as private


# What the message box recognizes as the person types: links [format] (URL detection by the
# server, e-mail addresses as mailto: links), @names and #channels picked from autocomplete.
_TYPED = re.compile(
    r"(?P<url>\b(?:https?://|mailto:)[^\s<>]+)"
    r"|(?P<www>\bwww\.[^\s<>]+)"
    r"|(?P<email>(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
    r"|(?P<at>(?<![\w@])@[\w.-]+)"
    r"|(?P<hash>(?<![\w#&])#[\w.-]+)"
)
# A control token pasted as it is (``preformatted``): <@U…>, <#C…>, <!…>, <https://…>.
_PASTED = re.compile(r"<(?:[@#!]|https?:|mailto:)[^<>\s][^<>]*>")
_TRAILING = ".,;:!?)'\""
BROADCASTS = ("here", "channel", "everyone")  # [format] "Special mentions"


def parse_typed(
    typed: str,
    directory: Directory | None,
    *,
    recognize: bool = True,
    preformatted: bool = False,
) -> list[Part]:
    """The parts of what a person typed. With ``recognize`` off (a command without
    ``should_escape``) everything is text; with ``preformatted`` the control tokens already
    in `typed` (``<@U1>``, ``<#C1|x>``…) are kept as pasted tokens."""
    parts: list[Part] = []
    pos = 0
    if preformatted:
        for m in _PASTED.finditer(typed):
            parts += parse_typed(typed[pos : m.start()], directory, recognize=recognize)
            parts.append(Part("token", m[0]))
            pos = m.end()
        return parts + parse_typed(typed[pos:], directory, recognize=recognize)
    if not recognize:
        return [Part("text", typed)] if typed else []
    for m in _TYPED.finditer(typed):
        found, rest = _recognize(m, directory)
        if found is None:
            continue
        parts.append(Part("text", typed[pos : m.start()]))
        parts.append(found)
        pos = m.end() - len(rest)
    parts.append(Part("text", typed[pos:]))
    return _merged(parts)


def _recognize(m: re.Match[str], directory: Directory | None) -> tuple[Part | None, str]:
    """What Slack makes of one match, and the characters at its end that are not part of
    it (``@oncall,`` is @oncall and a comma)."""
    word = m[0]
    if m["url"] or m["www"]:
        core = word.rstrip(_TRAILING)
        rest = word[len(core) :]
        if m["www"]:  # [format]: "the full URL is included first, then ... what was typed"
            return Part("link", "http://" + core, core), rest
        return Part("link", core), rest
    if m["email"]:
        return Part("link", "mailto:" + word, word), ""
    sigil, name = word[0], word[1:]
    while name:
        if sigil == "@":
            if name in BROADCASTS:
                return Part("broadcast", name), word[1 + len(name) :]
            person = directory.user(name) if directory else None
            if person is not None:
                return Part("user", person.id, person.name), word[1 + len(name) :]
            group = directory.usergroup(name) if directory else None
            if group is not None:
                return Part("usergroup", group.id, group.handle), word[1 + len(name) :]
        else:
            channel = directory.channel(name) if directory else None
            if channel is not None:
                part = Part("channel", channel["id"], name, bool(channel.get("is_private")))
                return part, word[1 + len(name) :]
        if name[-1] not in ".-_":
            break
        name = name[:-1]
    return None, ""  # a name Slack does not know stays plain text, as typed


def _merged(parts: list[Part]) -> list[Part]:
    out: list[Part] = []
    for part in parts:
        if part.kind == "text" and not part.value:
            continue
        if part.kind == "text" and out and out[-1].kind == "text":
            out[-1] = Part("text", out[-1].value + part.value)
        else:
            out.append(part)
    return out


def wire_text(parts: list[Part], *, labels: bool) -> str:
    """The text field Slack sends for these parts. ``labels``: tokens carry the name the
    person saw after a pipe ([format]: ``<@U024BE7LH|bob>``; [slash]: a private channel
    only as ``<#C…|>``); without, only IDs (as [slash]'s example and message events)."""
    out = []
    for p in parts:
        match p.kind:
            case "text":
                out.append(escape(p.value))
            case "token":
                out.append(p.value)
            case "user":
                out.append(f"<@{p.value}|{p.label}>" if labels else f"<@{p.value}>")
            case "usergroup":
                out.append(
                    f"<!subteam^{p.value}|@{p.label}>" if labels else f"<!subteam^{p.value}>"
                )
            case "channel":
                label = "" if p.private else p.label
                out.append(f"<#{p.value}|{label}>" if labels else f"<#{p.value}>")
            case "broadcast":
                out.append(f"<!{p.value}>")
            case "link":
                target = escape(p.value)
                out.append(f"<{target}|{escape(p.label)}>" if p.label else f"<{target}>")
    return "".join(out)


def rich_text(parts: list[Part]) -> list[dict]:
    """The ``rich_text`` block the message box sends along with a message's text."""
    elements: list[dict] = []
    for p in parts:
        match p.kind:
            case "text" | "token":
                elements.append({"type": "text", "text": p.value})
            case "user":
                elements.append({"type": "user", "user_id": p.value})
            case "usergroup":
                elements.append({"type": "usergroup", "usergroup_id": p.value})
            case "channel":
                elements.append({"type": "channel", "channel_id": p.value})
            case "broadcast":
                elements.append({"type": "broadcast", "range": p.value})
            case "link":
                elements.append(
                    {"type": "link", "url": p.value} | ({"text": p.label} if p.label else {})
                )
    block_id = secrets.token_urlsafe(4)[:5]
    section = {"type": "rich_text_section", "elements": elements}
    return [{"type": "rich_text", "block_id": block_id, "elements": [section]}]


# ---- modal state, in Slack's shapes ([views] view.state.values; [actions] state) ---------


def text_input(value: str | None) -> dict:
    """A plain_text_input as submitted [views]: the value as typed, a plain string (the
    entity escaping of [format] is for message text), None when left empty."""
    return {"type": "plain_text_input", "value": value}


def _option(option: str | tuple[str, str]) -> dict:
    value, text = option if isinstance(option, tuple) else (option, option)
    return {"text": {"type": "plain_text", "text": text, "emoji": True}, "value": value}


def checkboxes(*options: str | tuple[str, str]) -> dict:
    """Checkboxes with these options ticked: a value, or (value, text shown)."""
    return {"type": "checkboxes", "selected_options": [_option(o) for o in options]}


def static_select(option: str | tuple[str, str] | None) -> dict:
    return {"type": "static_select", "selected_option": _option(option) if option else None}


def radio_buttons(option: str | tuple[str, str] | None) -> dict:
    return {"type": "radio_buttons", "selected_option": _option(option) if option else None}


def users_select(user_id: str | None) -> dict:
    return {"type": "users_select", "selected_user": user_id}


def multi_users_select(*user_ids: str) -> dict:
    return {"type": "multi_users_select", "selected_users": list(user_ids)}


def conversations_select(channel_id: str | None) -> dict:
    return {"type": "conversations_select", "selected_conversation": channel_id}


# ---- the builder --------------------------------------------------------------------------


class Inbound:
    """Builds signed requests from one workspace (``team_id``, by default the fake's),
    acting by default as ``U123`` (@alice) in ``C123``. ``enterprise_id`` /
    ``enterprise_name`` make it a workspace of an Enterprise Grid org; ``should_escape``
    is the slash command's setting (our manifest.json turns it on)."""

    def __init__(
        self,
        fake: FakeSlack | None,
        signing_secret: str,
        *,
        team_id: str | None = None,
        team_domain: str = "fake",
        enterprise_id: str | None = None,
        enterprise_name: str | None = None,
        api_app_id: str = "A0001",
        user_id: str = DEFAULT_USER_ID,
        channel_id: str = "C123",
        should_escape: bool = True,
        clock=time.time,
    ) -> None:
        self.fake = fake
        self.signing_secret = signing_secret
        self.team_id = team_id or (fake.team_id if fake else "T0001")
        self.team_domain = team_domain
        self.enterprise_id, self.enterprise_name = enterprise_id, enterprise_name
        self.api_app_id = api_app_id
        self.user_id, self.channel_id = user_id, channel_id
        self.should_escape = should_escape
        self.bot_user_id = fake.bot_user_id if fake else "UBOT"
        self.clock = clock

    @property
    def directory(self) -> Directory | None:
        return getattr(self.fake, "directory", None)

    # ---- slash commands ([slash] "Preparing your app to receive commands") --------------
    def command(
        self,
        text: str = "",
        *,
        command: str = "/otajob",
        key: str = "r1",
        user_id: str | None = None,
        user_name: str | None = None,
        channel_id: str | None = None,
        team_id: str | None = None,
        should_escape: bool | None = None,
        labels: bool = True,
        preformatted: bool = False,
        response_url: str | None = None,
        trigger_id: str | None = None,
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> AsyncBoltRequest:
        """``/otajob <text>``, `text` as the person typed it. With ``should_escape`` (the
        default, as in manifest.json) what they picked from autocomplete arrives as tokens
        and typed URLs in angle brackets [slash]; without, "the payload will repeat the
        plain text" [slash] (still entity-escaped: all text in Slack is [format])."""
        team = team_id or self.team_id
        person = self._person(user_id)
        if person.team_id and person.team_id != team:
            # [connect] "Slash commands are not shared": only the installing team can.
            raise ValueError(f"Slack sends no slash command from {person.id} of {person.team_id}")
        escape_on = self.should_escape if should_escape is None else should_escape
        parts = parse_typed(text, self.directory, recognize=escape_on, preformatted=preformatted)
        channel = channel_id or self.channel_id
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": team,
            "team_domain": self.team_domain,
            # [slash]: "enterprise_id and enterprise_name ... when the executing workspace
            # is part of an Enterprise Grid."
            **self._grid_fields(),
            "channel_id": channel,
            "channel_name": self._channel_name(channel),
            "user_id": person.id,
            "user_name": user_name or person.name,
            "command": command,
            "text": wire_text(parts, labels=labels),
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url
            or self._response_url(key, "commands", ResponseTarget(channel, person.id)),
            "trigger_id": trigger_id or self._trigger_id(),
        }
        return self.sign(
            urlencode(fields), FORM, timestamp=timestamp, signing_secret=signing_secret
        )

    # ---- buttons ([actions]) ----------------------------------------------------------
    def click(
        self,
        action_id: str,
        value: str = "",
        *,
        key: str | None = "b1",
        where: str = "message",
        message: dict | None = None,
        message_ts: str | None = None,
        view_id: str | None = None,
        container: dict | None = None,
        block_id: str = "actions",
        text: str | None = None,
        state: dict | None = None,
        user_id: str | None = None,
        user_name: str | None = None,
        channel_id: str | None = None,
        team_id: str | None = None,
        response_url: str | None = None,
        trigger_id: str | None = None,
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> AsyncBoltRequest:
        """A button click. ``where``: ``message`` (a channel message), ``ephemeral`` (a
        message only this person sees), ``home`` (their Home tab) or ``modal``; or give
        Slack's ``container`` itself. ``key`` names the response_url (None: none)."""
        if container is not None:
            where = self._where(container)
        if where not in ("message", "ephemeral", "home", "modal"):
            raise ValueError(f"where: message, ephemeral, home or modal, not {where!r}")
        person = self._person(user_id)
        team = team_id or self.team_id
        channel = channel_id or (container or {}).get("channel_id") or self.channel_id
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user_object(person, team, user_name),
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "container": None,
            "trigger_id": trigger_id or self._trigger_id(),
            "team": self._team_object(team),
            "enterprise": self._enterprise_object(),
            "is_enterprise_install": False,
        }
        if where in ("home", "modal"):
            view = self._view_for(where, view_id or (container or {}).get("view_id"), person.id)
            payload["container"] = container or {"type": "view", "view_id": view["id"]}
            payload["view"] = view
            # No response_url: [actions] sends one only where there is a conversation to
            # answer in (a message); a view has none (modals get ``response_urls`` only
            # from inputs made for it [views]).
        else:
            msg = message
            ts = message_ts or (msg or {}).get("ts") or (container or {}).get("message_ts")
            ts = ts or "1700000000.000100"
            payload["container"] = container or {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": where == "ephemeral",
            }
            payload["channel"] = {"id": channel, "name": self._channel_name(channel)}
            if where == "message":
                # A channel message comes along whole; an ephemeral one does not [captured].
                payload["message"] = msg or self._message(channel, ts)
            target = ResponseTarget(channel, person.id, ts, ephemeral=where == "ephemeral")
            url = response_url or (self._response_url(key, "actions", target) if key else None)
            if url:
                payload["response_url"] = url
        payload["state"] = {"values": state or {}}
        payload["actions"] = [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": text or action_id, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": self._now_ts(),
            }
        ]
        body = urlencode({"payload": json.dumps(payload)})
        return self.sign(body, FORM, timestamp=timestamp, signing_secret=signing_secret)

    # ---- modal submissions ([views] "view_submission payloads") --------------------------
    def submit(
        self,
        callback_id: str | None = None,
        *,
        values: dict | None = None,
        private_metadata: str | None = None,
        view: dict | None = None,
        view_id: str | None = None,
        user_id: str | None = None,
        user_name: str | None = None,
        team_id: str | None = None,
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> AsyncBoltRequest:
        """The person presses Submit. `view` (or `view_id`, looked up in the fake's open
        modals) is the modal as opened: its callback_id, private_metadata and blocks come
        along, as Slack sends the whole view back; `values` is ``view.state.values``:
        ``{block_id: {action_id: text_input("…") | checkboxes(…) | …}}``."""
        if view is None and view_id and self.fake is not None:
            view = self.fake.views.get(view_id)
        base = dict(view or {})
        person = self._person(user_id)
        team = team_id or self.team_id
        the_id = base.get("id") or view_id or "V0001"
        submitted = {
            "id": the_id,
            "team_id": team,
            "type": "modal",
            "blocks": base.get("blocks", []),
            "private_metadata": (
                private_metadata
                if private_metadata is not None
                else base.get("private_metadata", "")
            ),
            "callback_id": callback_id or base.get("callback_id", ""),
            "state": {"values": values or {}},
            "hash": f"{int(self.clock())}.{secrets.token_hex(4)}",
            "title": base.get("title", {"type": "plain_text", "text": "otajob"}),
            "clear_on_close": bool(base.get("clear_on_close", False)),
            "notify_on_close": bool(base.get("notify_on_close", False)),
            "close": base.get("close"),
            "submit": base.get("submit"),
            "previous_view_id": None,
            "root_view_id": the_id,
            "app_id": self.api_app_id,
            "external_id": base.get("external_id", ""),
            "app_installed_team_id": team,
            "bot_id": BOT_ID,
        }
        payload = {
            "type": "view_submission",
            "team": self._team_object(team),
            "user": self._user_object(person, team, user_name),
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self._trigger_id(),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": self._enterprise_object(),
        }
        body = urlencode({"payload": json.dumps(payload)})
        return self.sign(body, FORM, timestamp=timestamp, signing_secret=signing_secret)

    # ---- Events API ([events]) ----------------------------------------------------------
    def mention_event(
        self,
        text: str,
        *,
        user_id: str | None = None,
        channel_id: str | None = None,
        ts: str | None = None,
        thread_ts: str | None = None,
        labels: bool = False,
        preformatted: bool = False,
        team_id: str | None = None,
    ) -> dict:
        """The ``app_mention`` event of a message the person typed, ``@otajob`` and all:
        the text as Slack sends message text (entities escaped, picks as ``<@U…>``
        [captured], links in brackets [format]), with the rich_text block it came from."""
        person = self._person(user_id)
        parts = parse_typed(text, self.directory, preformatted=preformatted)
        ts = ts or self._now_ts()
        event: dict[str, Any] = {
            "client_msg_id": _uuid(),
            "type": "app_mention",
            "text": wire_text(parts, labels=labels),
            "user": person.id,
            "ts": ts,
            "blocks": rich_text(parts),
            "team": person.team_id or team_id or self.team_id,
        }
        if person.team_id and person.team_id != (team_id or self.team_id):
            # A Slack Connect member of another org [connect]: their team rides along
            # [captured] (``user_team``, ``source_team``).
            event |= {"user_team": person.team_id, "source_team": person.team_id}
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        return event | {"channel": channel_id or self.channel_id, "event_ts": ts}

    def home_opened_event(self, user_id: str | None = None, *, tab: str = "home") -> dict:
        """``app_home_opened``: the person opened the app's Home (or Messages) tab; the
        Home view they were last shown comes along when there is one."""
        person = self._person(user_id)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": person.id,
            "channel": "D" + person.id.lstrip("UW"),
            "tab": tab,
            "event_ts": self._now_ts(),
        }
        if self.fake is not None and tab == "home" and person.id in self.fake.home:
            event["view"] = dict(self.fake.home[person.id])
        return event

    def mention(
        self,
        text: str,
        *,
        event_id: str | None = None,
        team_id: str | None = None,
        **event_fields: Any,
    ) -> AsyncBoltRequest:
        """An ``app_mention`` delivery (see :meth:`mention_event` for `event_fields`)."""
        event = self.mention_event(text, team_id=team_id, **event_fields)
        return self.event(event, event_id=event_id, team_id=team_id)

    def home_opened(
        self,
        user_id: str | None = None,
        *,
        tab: str = "home",
        event_id: str | None = None,
        team_id: str | None = None,
    ) -> AsyncBoltRequest:
        return self.event(
            self.home_opened_event(user_id, tab=tab), event_id=event_id, team_id=team_id
        )

    def event(
        self,
        event: dict,
        *,
        event_id: str | None = None,
        team_id: str | None = None,
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> AsyncBoltRequest:
        """The ``event_callback`` envelope around `event` [events] "Events dispatched as
        JSON": one authorization (the bot's; [events] "Authorizations": truncated to one),
        an event_context, and ``is_ext_shared_channel`` when the person is from another
        org (a Slack Connect channel) [connect]."""
        team = team_id or self.team_id
        external = bool(event.get("user_team")) and event.get("user_team") != team
        envelope = {
            "token": VERIFICATION_TOKEN,
            "team_id": team,
            **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {}),
            "context_team_id": team,
            "context_enterprise_id": self.enterprise_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(self.clock()),
            "authorizations": [
                {
                    "enterprise_id": self.enterprise_id,
                    "team_id": team,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": external,
            "event_context": _event_context(event, team, self.api_app_id),
        }
        body = json.dumps(envelope)
        return self.sign(body, JSON, timestamp=timestamp, signing_secret=signing_secret)

    def retry(
        self, request: AsyncBoltRequest, num: int = 1, reason: str = "http_timeout"
    ) -> AsyncBoltRequest:
        """Slack delivering the same event again [events] "Retries": the same body, with
        ``X-Slack-Retry-Num`` (1, 2 or 3) and ``X-Slack-Retry-Reason``, signed anew."""
        if num not in (1, 2, 3) or reason not in RETRY_REASONS:
            raise ValueError(f"Slack retries 3 times at most, for {sorted(RETRY_REASONS)}")
        content_type = request.headers.get("content-type", [JSON])[0]
        headers = {"x-slack-retry-num": str(num), "x-slack-retry-reason": reason}
        return self.sign(request.raw_body, content_type, extra_headers=headers)

    # ---- signing ([signing]) ------------------------------------------------------------
    def sign(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signing_secret: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> AsyncBoltRequest:
        """`body` signed as Slack signs: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``
        with the signing secret, in X-Slack-Signature, and X-Slack-Request-Timestamp."""
        ts = str(int(self.clock()) if timestamp is None else timestamp)
        verifier = SignatureVerifier(signing_secret or self.signing_secret)
        headers = {
            "content-type": content_type,
            "x-slack-signature": verifier.generate_signature(timestamp=ts, body=body),
            "x-slack-request-timestamp": ts,
            **(extra_headers or {}),
        }
        return AsyncBoltRequest(body=body, headers=headers)

    # ---- pieces -------------------------------------------------------------------------
    def _person(self, user_id: str | None) -> Person:
        the_id = user_id or self.user_id
        if self.directory is not None:
            return self.directory.person(the_id)
        name = DEFAULT_USER_NAME if the_id == DEFAULT_USER_ID else f"user-{the_id.lower()}"
        return Person(the_id, name)

    def _user_object(self, person: Person, team: str, user_name: str | None) -> dict:
        # [actions] examples: {"id", "username", "name", "team_id"}.
        name = user_name or person.name
        return {"id": person.id, "username": name, "name": name, "team_id": person.team_id or team}

    def _team_object(self, team: str) -> dict:
        return {"id": team, "domain": self.team_domain} | (
            {"enterprise_id": self.enterprise_id, "enterprise_name": self.enterprise_name}
            if self.enterprise_id
            else {}
        )

    def _enterprise_object(self) -> dict | None:
        # [actions] `enterprise`: "if the app is either workspace-installed on an org".
        if not self.enterprise_id:
            return None
        return {"id": self.enterprise_id, "name": self.enterprise_name}

    def _grid_fields(self) -> dict:
        if not self.enterprise_id:
            return {}
        return {"enterprise_id": self.enterprise_id, "enterprise_name": self.enterprise_name or ""}

    def _channel_name(self, channel_id: str) -> str:
        """The channel name Slack sends: its name, but ``privategroup`` for a private
        channel and ``directmessage`` for a DM [captured]."""
        known = self.fake.channels.get(channel_id) if self.fake is not None else None
        if channel_id.startswith("D"):
            return "directmessage"
        if (known and known.get("is_private")) or (not known and channel_id.startswith("G")):
            return "privategroup"
        return known["name"] if known else "general"

    def _response_url(self, key: str, kind: str, target: ResponseTarget) -> str:
        if self.fake is not None:
            return self.fake.response_url(key, target)
        return f"https://hooks.slack.com/{kind}/{self.team_id}/{next(_serial)}/{key}"

    def _trigger_id(self) -> str:
        if self.fake is not None:
            return self.fake.new_trigger_id()
        return f"{next(_serial) + 1_000_000}.98765.{secrets.token_hex(16)}"

    def _message(self, channel: str, ts: str) -> dict:
        """The clicked message as Slack sends it along: from the fake's channel when it is
        there, otherwise a bot message with that ts."""
        if self.fake is not None:
            for msg in self.fake.messages(channel):
                if msg.get("ts") == ts:
                    return {k: v for k, v in msg.items() if k != "channel"}
        return {
            "type": "message",
            "text": "",
            "ts": ts,
            "user": self.bot_user_id,
            "bot_id": BOT_ID,
            "blocks": [],
        }

    def _view_for(self, where: str, view_id: str | None, user_id: str) -> dict:
        """The Home tab or modal the button is in, as Slack sends it along [actions]."""
        view: dict | None = None
        if self.fake is not None:
            if where == "home":
                home = self.fake.home.get(user_id)
                if home and (view_id is None or home.get("id") == view_id):
                    view = home
                view = view or next(
                    (v for v in self.fake.home.values() if v.get("id") == view_id), None
                )
            else:
                view = self.fake.views.get(view_id or "")
        base = dict(view or {})
        the_id = base.get("id") or view_id or "V0001"
        return {
            "id": the_id,
            "team_id": self.team_id,
            "type": "home" if where == "home" else "modal",
            "blocks": base.get("blocks", []),
            "private_metadata": base.get("private_metadata", ""),
            "callback_id": base.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(self.clock())}.{secrets.token_hex(4)}",
            "title": base.get("title"),
            "clear_on_close": bool(base.get("clear_on_close", False)),
            "notify_on_close": bool(base.get("notify_on_close", False)),
            "close": base.get("close"),
            "submit": base.get("submit"),
            "previous_view_id": None,
            "root_view_id": the_id,
            "app_id": self.api_app_id,
            "external_id": base.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }

    def _now_ts(self) -> str:
        """A message-style ts ("1700000000.000200"): now, unique and rising in the process."""
        _last_us[0] = max(int(self.clock() * 1_000_000), _last_us[0] + 1)
        return f"{_last_us[0] // 1_000_000}.{_last_us[0] % 1_000_000:06d}"

    def _where(self, container: dict) -> str:
        """What Slack's `container` names: a view is a modal when the fake opened it."""
        if container.get("type") == "view":
            opened = self.fake is not None and container.get("view_id") in self.fake.views
            return "modal" if opened else "home"
        return "ephemeral" if container.get("is_ephemeral") else "message"


def as_http(request: AsyncBoltRequest) -> tuple[str, dict[str, str]]:
    """The body and headers to POST `request` to a running app over HTTP."""
    return request.raw_body, {k: v[0] for k, v in request.headers.items()}


def _event_context(event: dict, team: str, app_id: str) -> str:
    # [events]: an opaque identifier of the event's context, e.g. "EC123ABC456".
    seed = json.dumps([event.get("type"), team, app_id, event.get("channel")]).encode()
    return "EC" + base64.b32encode(seed).decode().rstrip("=")[:10]


def _uuid() -> str:
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
