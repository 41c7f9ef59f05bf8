"""``@otajob <JobId>`` anywhere the app is: the card in a thread under the mention.

Slack delivers an event again when it does not get its ack in time (X-Slack-Retry-Num),
and Bolt does not deduplicate: each event_id is recorded in the database first, so a
retry, or a second process, never answers twice (``first_delivery``, also used by the
Home tab).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..job_ref import JobRef
from ..render import Message
from .deps import Deps
from .grammar import QueryJob, parse_words
from .replies import help_or_refusal, job_reply, read_counts
from .typed_text import words

log = logging.getLogger("otajob.events")


async def first_delivery(deps: Deps, body: dict[str, Any]) -> bool:
    """True the first time an event arrives, False for Slack's retries of it."""
    event_id = body.get("event_id")
    return not event_id or await deps.store.first_delivery(str(event_id), time.time())


async def answer_mention(deps: Deps, client: AsyncWebClient, event: dict[str, Any]) -> None:
    """Answer ``@otajob <JobId>`` in a thread under the mention. Problems go only to the
    person who asked (ephemeral in the same thread)."""
    channel, user = str(event.get("channel") or ""), str(event.get("user") or "")
    thread_ts = str(event.get("thread_ts") or event.get("ts") or "")
    # The mention text is escaped like a command's; people mentioned (the app too) are
    # not part of what was asked.
    typed = [w for w in words(str(event.get("text") or "")) if getattr(w, "kind", "") != "user"]
    parsed = parse_words(typed)

    async def only_them(message: Message) -> None:
        try:
            await client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread_ts, **message.as_kwargs()
            )
        except SlackApiError as exc:
            log.info("could not answer a mention privately: %s", exc.response.get("error"))

    render = deps.renderer.render
    # What only they see is in their language; the card in the thread, the channel's.
    own = await deps.languages.of_person(user, channel, event)
    if answer := help_or_refusal(deps, parsed, own):
        await only_them(answer)
        return
    if not isinstance(parsed, QueryJob):
        await only_them(render("note", lang=own, kind="mention_only_cards", demo=deps.demo))
        return
    ref = JobRef(parsed.job_id, parsed.instance_id, public=True)
    lang = await deps.languages.of_channel(channel)
    reply = await job_reply(deps, ref, lang=lang, refusal_lang=own)
    if not reply.ok:
        await only_them(reply.message)
        return
    try:
        posted = await client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            **reply.message.as_kwargs(),
        )
    except SlackApiError as exc:  # e.g. an announcement-only channel, or archived
        error = str(exc.response.get("error") or "unknown_error")
        note = render(
            "note",
            lang=own,
            kind="mention_cannot_post",
            error=error,
            job_id=ref.job_id,
            demo=deps.demo,
        )
        await only_them(note)
        return
    counts = await read_counts(deps, ref)
    await client.chat_update(
        channel=channel, ts=posted["ts"], **reply.with_counts(counts).as_kwargs()
    )


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_mention")
    @deps.answering.after_ack
    async def mentioned(
        body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient
    ) -> None:
        if await first_delivery(deps, body):
            await answer_mention(deps, client, event)
