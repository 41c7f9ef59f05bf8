"""Whose language a reply speaks, and `/otajob language`.

- What only one person sees (ephemeral replies, dialogs, the Home tab, DMs): their Slack
  language, read from ``users.info`` with ``include_locale`` (scope ``users:read``) or off
  the payload where Slack puts a locale there, and kept for an hour. It is looked up only
  after the acknowledgement, within LOOKUP_SECONDS; a lookup that fails or a language
  otajob does not speak falls back to the channel's language, then the workspace's.
- What everyone in a channel sees (watched cards, thread replies, alerts, shared cards,
  action records): the channel's language (`/otajob language ja`), else OTAJOB_LANGUAGE.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cachetools import TLRUCache
from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..languages import NAMES, language_of_locale
from .asker import Asker

if TYPE_CHECKING:
    from .deps import Deps
    from .grammar import ChannelLanguage

log = logging.getLogger("otajob.language")

LOOKUP_SECONDS = 1.5  # a reply waits at most this long for a person's language
KNOWN_SECONDS = 3600.0  # a person's language is read again after an hour
UNKNOWN_SECONDS = 300.0  # a failed lookup is tried again after five minutes
MAX_PEOPLE = 20_000


def payload_locale(body: dict[str, Any]) -> str | None:
    """A locale Slack put on the request itself (``locale`` or ``user.locale``), if any."""
    user = body.get("user") if isinstance(body.get("user"), dict) else {}
    for value in (body.get("locale"), user.get("locale"), body.get("user_locale")):
        if isinstance(value, str) and value:
            return value
    return None


class Languages:
    """Which language to answer in: a person's, a channel's, or the workspace's."""

    def __init__(
        self,
        default: str,
        client: AsyncWebClient,
        channel_language: Callable[[str], Awaitable[str]],
        *,
        clock: Callable[[], float] = time.monotonic,
        lookup_seconds: float = LOOKUP_SECONDS,
    ) -> None:
        self.default = default
        self._client = client
        # The watcher's (bot/watch/lifecycle.py): one answer to "which language does this
        # channel read", for its posts and for our replies alike.
        self._channel_language = channel_language
        self._lookup_seconds = lookup_seconds
        # user ID -> (language or None: unknown / not spoken, seconds to keep it)
        self._people: TLRUCache[str, tuple[str | None, float]] = TLRUCache(
            maxsize=MAX_PEOPLE, ttu=lambda _key, value, now: now + value[1], timer=clock
        )
        self._lookups: dict[str, asyncio.Future[str | None]] = {}

    def known(self, user_id: str) -> str | None:
        """The person's language if it is known already (no I/O: usable before an ack)."""
        entry = self._people.get(user_id)
        return entry[0] if entry else None

    async def of_channel(self, channel_id: str | None) -> str:
        if not channel_id:
            return self.default
        return await self._channel_language(channel_id)

    async def of_person(
        self,
        user_id: str,
        channel_id: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> str:
        """The person's language; if it cannot be known in time, the channel's."""
        spoken = language_of_locale(payload_locale(body or {}))
        if spoken:
            self._people[user_id] = (spoken, KNOWN_SECONDS)
            return spoken
        if user_id in self._people:
            found = self.known(user_id)
        else:
            found = await self._look_up(user_id)
        return found or await self.of_channel(channel_id)

    async def asker(self, asker: Asker, body: dict[str, Any] | None = None) -> Asker:
        """``asker`` with their language filled in."""
        language = await self.of_person(asker.user_id, asker.channel_id, body)
        return replace(asker, lang=language)

    async def _look_up(self, user_id: str) -> str | None:
        """users.info, one call per person at a time, bounded: a slow Slack costs this
        reply its person's language, never its time."""
        lookup = self._lookups.get(user_id)
        if lookup is None:
            lookup = asyncio.ensure_future(self._read_locale(user_id))
            self._lookups[user_id] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(user_id, None))
        try:
            return await asyncio.wait_for(asyncio.shield(lookup), self._lookup_seconds)
        except TimeoutError:
            log.info("language of %s not known in time; using the channel's", user_id)
            return None

    async def _read_locale(self, user_id: str) -> str | None:
        try:
            response = await self._client.users_info(user=user_id, include_locale=True)
        except SlackApiError as exc:  # missing users:read, user_not_found...
            log.warning("users.info for %s: %s", user_id, exc.response.get("error"))
            self._people[user_id] = (None, UNKNOWN_SECONDS)
            return None
        except Exception as exc:  # no answer: try again at the next request
            log.warning("users.info for %s failed: %s", user_id, type(exc).__name__)
            return None
        locale = str((response.get("user") or {}).get("locale") or "")
        language = language_of_locale(locale)
        self._people[user_id] = (language, KNOWN_SECONDS if locale else UNKNOWN_SECONDS)
        return language


async def channel_language_command(
    deps: Deps, request: ChannelLanguage, asker: Asker, respond: AsyncRespond
) -> None:
    """`/otajob language [ja|zh|en|default]`: show or set the channel's language. The
    answer is the person's own (ephemeral), in their language."""
    channel = asker.channel_id
    if request.change:
        await deps.store.set_channel_language(
            channel, request.language, set_by=asker.user_id, now=time.time()
        )
    chosen = await deps.store.channel_language(channel)
    message = deps.renderer.render(
        "language",
        lang=asker.lang,
        changed=request.change,
        channel_id=channel,
        chosen=NAMES.get(chosen or "", ""),
        current=NAMES[chosen if chosen in NAMES else deps.languages.default],
        workspace=NAMES[deps.languages.default],
        names=list(NAMES.values()),
        demo=deps.demo,
    )
    await respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())
