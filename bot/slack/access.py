"""Who may use the app, where, and who may use its write actions.

Checked on every request by one Bolt middleware (``register``), before any listener runs,
so no surface can forget it. Admins are checked again inside each write action, because
a button payload can be forged or outlive a change to the allow-list.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from ..config import Settings, split_list
from ..languages import NAMES
from ..render import Message, Renderer
from .language import Languages

log = logging.getLogger("otajob.access")
GROUP_LOOKUP_SECONDS = 1.5
# The block a refused dialog shows its error under (the cancel dialog's only input).
VIEW_ERROR_BLOCK = "cancel_in_progress"


@dataclass(frozen=True)
class Policy:
    """The settings' lists, parsed once. Empty sets mean "no restriction"."""

    team_id: str | None = None
    channels: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()  # user IDs and user group IDs (S...)
    actions: frozenset[str] = frozenset()  # enabled write actions: cancel, reupgrade

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            team_id=settings.slack_team_id or None,
            channels=frozenset(split_list(settings.otajob_allowed_channels)),
            users=frozenset(split_list(settings.otajob_allowed_users)),
            admins=frozenset(split_list(settings.otajob_admins)),
            actions=settings.actions,
        )

    def refusal(
        self, team_id: str | None, user_id: str | None, channel_id: str | None
    ) -> str | None:
        """Why a request is refused (a key of templates/refused.json.j2), or None."""
        # Fail closed: a payload that names no workspace is not from the one we serve.
        if self.team_id and team_id != self.team_id:
            return "other_workspace"
        if self.users and user_id not in self.users:  # no user at all: not on the list
            return "user_not_allowed"
        # Strict: DMs too, unless listed. The Home tab has no channel and stays open; it
        # lists only watches in channels the person is in.
        if channel_id and not self.channel_allowed(channel_id):
            return "channel_not_allowed"
        return None

    def channel_allowed(self, channel_id: str) -> bool:
        """Whether OTAJOB_ALLOWED_CHANNELS lets the app work in this channel."""
        return not self.channels or channel_id in self.channels


class Admins:
    """Is this person on the write-action allow-list, directly or through a user group?
    Group members are read with usergroups.users.list and kept for a minute."""

    def __init__(
        self,
        policy: Policy,
        client: AsyncWebClient,
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    def enabled(self, action: str) -> bool:
        return action in self.policy.actions

    async def is_admin(self, user_id: str | None) -> bool:
        if not user_id or not self.policy.actions:
            return False
        if user_id in self.policy.admins:
            return True
        for group in sorted(a for a in self.policy.admins if a.startswith("S")):
            if user_id in await self._members(group):
                return True
        return False

    async def may(self, action: str, user_id: str | None) -> bool:
        return self.enabled(action) and await self.is_admin(user_id)

    async def _members(self, group: str) -> frozenset[str]:
        now = self._clock()
        cached = self._groups.get(group)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        try:
            # Bounded: a cancel dialog's trigger_id and a submission's ack both have 3 s.
            response = await asyncio.wait_for(
                self._client.usergroups_users_list(usergroup=group), GROUP_LOOKUP_SECONDS
            )
            members = frozenset(response.get("users") or [])
        except SlackApiError as exc:
            # Fail closed: a group we cannot read grants nothing.
            log.warning("cannot read user group %s: %s", group, exc.response.get("error"))
            members = frozenset()
        except Exception as exc:  # no answer at all: fail closed too, and ask next time
            log.warning("cannot reach Slack for user group %s: %s", group, type(exc).__name__)
            return frozenset()
        self._groups[group] = (now, members)
        return members


def request_parties(body: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(team, user, channel) of any request Slack sends: command, interaction or event."""
    event = body.get("event") or {}
    team = body.get("team_id") or (body.get("team") or {}).get("id")
    team = team or (body.get("user") or {}).get("team_id") or event.get("team")
    user = body.get("user_id") or (body.get("user") or {}).get("id") or event.get("user")
    channel = (
        body.get("channel_id")
        or (body.get("channel") or {}).get("id")
        or (body.get("container") or {}).get("channel_id")
        or event.get("channel")
    )
    if event.get("type") == "app_home_opened":
        channel = None  # the Home tab's "channel" is the app's DM: not a place to restrict
    return team, user if isinstance(user, str) else None, channel


def register(
    app: AsyncApp, policy: Policy, renderer: Renderer, languages: Languages, *, demo: bool = False
) -> None:
    @app.middleware
    async def check_access(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        body = req.body or {}
        if body.get("type") == "url_verification" or body.get("ssl_check"):
            return await next()
        reason = policy.refusal(*request_parties(body))
        if reason is None:
            return await next()
        team, user, channel = request_parties(body)
        log.info("refused %s: team=%s user=%s channel=%s", reason, team, user, channel)
        # Refused before any lookup, often a stranger (another workspace, a channel or a
        # person not allowed): the person's language if it is known, else the workspace's.
        lang = (user and languages.known(user)) or languages.default
        if body.get("type") == "view_submission":  # the dialog stays open and says why
            lang = dialog_language(body) or lang
            refusal = renderer.text("dialog_refusal", lang=lang, reason=reason).strip()
            errors = {VIEW_ERROR_BLOCK: refusal}
            return BoltResponse(
                status=200,
                body=json.dumps({"response_action": "errors", "errors": errors}),
                headers={"content-type": ["application/json;charset=utf-8"]},
            )
        message = renderer.render("refused", lang=lang, reason=reason, demo=demo)
        if body.get("command"):  # the person sees why, only them, in the ack itself
            return BoltResponse(
                status=200,
                body=message.as_json(response_type="ephemeral"),
                headers={"content-type": ["application/json;charset=utf-8"]},
            )
        # Interactions get the refusal through their response_url, after the ack; events
        # get nothing (answering a foreign workspace or a closed channel would leak words).
        response_url = body.get("response_url")
        if response_url and body.get("type") == "block_actions":
            task = asyncio.create_task(_tell(response_url, message))
            _pending.add(task)
            task.add_done_callback(_pending.discard)
        return BoltResponse(status=200, body="")


def dialog_language(body: dict[str, Any]) -> str | None:
    """The language a dialog was opened in, kept in its private_metadata (no I/O)."""
    try:
        private = json.loads((body.get("view") or {}).get("private_metadata") or "{}")
    except ValueError:
        return None
    lang = private.get("lang") if isinstance(private, dict) else None
    return lang if isinstance(lang, str) and lang in NAMES else None


_pending: set[asyncio.Task[None]] = set()


async def _tell(response_url: str, message: Message) -> None:
    try:
        await AsyncWebhookClient(response_url).send(
            response_type="ephemeral", replace_original=False, **message.as_kwargs()
        )
    except Exception:  # a refusal that cannot be delivered is still a refusal
        log.warning("could not deliver a refusal", exc_info=True)
