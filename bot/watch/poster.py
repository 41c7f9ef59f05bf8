"""Posting to Slack for watchers, so that a post is never made twice.

Each post carries message metadata naming its outbox entry. After a crash between
Slack accepting a post and the database recording it, ``find`` looks for that metadata
in the thread (or the channel's recent history, for a card) instead of posting again.
The protocol around it (the outbox intent, the search, the post, the record) is in
``delivery``; this module only talks to Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from ..render import Message

log = logging.getLogger("otajob.watch")
EVENT_TYPE = "otajob_post"
# Looking for an earlier post after a crash: pages of this many messages, at most this
# many pages (200 x 50: ten thousand messages since the intent, in a very busy channel).
FIND_PAGE = 200
FIND_MAX_PAGES = 50
# chat.update answers that pass (docs.slack.dev, chat.update "Errors", and the rate
# limits page): the same edit may go through later.
TRY_AGAIN_LATER = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Errors that mean "this channel cannot take our posts until a person acts".
CHANNEL_ERRORS = frozenset(
    {"channel_not_found", "is_archived", "not_in_channel", "restricted_action"}
)


class ChannelUnavailable(Exception):
    def __init__(self, channel: str, error: str) -> None:
        self.channel = channel
        self.error = error
        super().__init__(f"{error} in {channel}")


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or "unknown_error")


class SlackPoster:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post(
        self,
        channel: str,
        message: Message,
        *,
        marker: dict[str, Any],
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> str:
        """Post and return the message's ts. A public channel the app is not in yet is
        joined once (needs channels:join); other channel problems raise ChannelUnavailable."""
        kwargs: dict[str, Any] = {
            "channel": channel,
            "metadata": {"event_type": EVENT_TYPE, "event_payload": marker},
            "unfurl_links": False,
            "unfurl_media": False,
            **message.as_kwargs(),
        }
        if thread_ts:
            kwargs.update(thread_ts=thread_ts, reply_broadcast=broadcast)
        for attempt in (1, 2):
            try:
                response = await self.client.chat_postMessage(**kwargs)
                return str(response["ts"])
            except SlackApiError as exc:
                error = _error(exc)
                if error == "not_in_channel" and attempt == 1 and await self.join(channel):
                    continue
                if error in CHANNEL_ERRORS:
                    raise ChannelUnavailable(channel, error) from None
                raise
        raise AssertionError("unreachable")

    async def join(self, channel: str) -> bool:
        try:
            await self.client.conversations_join(channel=channel)
            return True
        except SlackApiError as exc:
            log.info("could not join %s: %s", channel, _error(exc))
            return False

    async def find(
        self, channel: str, marker: dict[str, Any], *, thread_ts: str | None, since: float
    ) -> str | None:
        """The ts of a message we posted with this marker, if Slack has one. ``since`` is
        when the intent to post was recorded: the search starts there (a minute earlier,
        for clocks that disagree) and pages through everything after it, however busy the
        channel has been since."""
        try:
            if thread_ts:
                pages = await self.client.conversations_replies(
                    channel=channel, ts=thread_ts, include_all_metadata=True, limit=FIND_PAGE
                )
            else:
                pages = await self.client.conversations_history(
                    channel=channel,
                    oldest=f"{max(since - 60, 0):.6f}",
                    include_all_metadata=True,
                    limit=FIND_PAGE,
                )
            read = 0
            async for page in pages:
                for message in page.get("messages") or []:
                    metadata = message.get("metadata") or {}
                    if (
                        metadata.get("event_type") == EVENT_TYPE
                        and metadata.get("event_payload") == marker
                    ):
                        return str(message["ts"])
                read += 1
                if read >= FIND_MAX_PAGES:
                    log.warning("no earlier post found in %s within %d pages", channel, read)
                    break
        except SlackApiError as exc:
            if _error(exc) in CHANNEL_ERRORS:
                raise ChannelUnavailable(channel, _error(exc)) from None
            # Cannot look (a missing scope, a rate limit): posting again risks a duplicate,
            # but not posting would stall the watch for good. Say so in the log.
            log.warning("could not look for an earlier post in %s: %s", channel, _error(exc))
        return None

    async def update(self, channel: str, ts: str, message: Message) -> bool:
        """Edit a card in place. False only when Slack refused for now (rate limited past
        the retries, an error on its side): the caller tries again later. True when done,
        and when trying again would change nothing (a deleted card, a refusal that is not
        about timing): that is logged and the card left alone."""
        try:
            await self.client.chat_update(channel=channel, ts=ts, **message.as_kwargs())
            return True
        except SlackApiError as exc:
            error = _error(exc)
            if error in CHANNEL_ERRORS:
                raise ChannelUnavailable(channel, error) from None
            log.warning("could not update card %s in %s: %s", ts, channel, error)
            return error not in TRY_AGAIN_LATER

    async def direct_message(self, user: str, message: Message) -> bool:
        """A message in the app's DM with ``user``; False if Slack refused it."""
        try:
            await self.client.chat_postMessage(channel=user, **message.as_kwargs())
            return True
        except SlackApiError as exc:
            log.warning("could not message %s: %s", user, _error(exc))
            return False

    async def upload(
        self, channel: str, user: str, file: Callable[[bool], dict[str, Any]]
    ) -> str | None:
        """Upload a file to ``channel`` (joining a public one if needed), else to the app's
        DM with ``user``. ``file(dm)`` gives its ``content``, ``filename``, ``title`` and
        ``initial_comment``: for the channel, or (``dm`` True) for that person alone.
        Returns where it went (a channel ID), or None if nowhere would take it."""
        for attempt in (1, 2):
            try:
                await self.client.files_upload_v2(channel=channel, **file(False))
                return channel
            except SlackApiError as exc:
                error = _error(exc)
                if error == "not_in_channel" and attempt == 1 and await self.join(channel):
                    continue
                log.info("could not upload to %s: %s; sending it by DM", channel, error)
                break
            except SlackClientError as exc:  # the upload itself failed (HTTP error)
                log.warning("could not upload to %s: %s", channel, exc)
                return None
        try:
            opened = await self.client.conversations_open(users=user)
            dm = str((opened.get("channel") or {}).get("id") or "")
            await self.client.files_upload_v2(channel=dm, **file(True))
            return dm
        except SlackClientError as exc:
            log.warning("could not upload to %s's DM either: %s", user, exc)
            return None
