"""The job card: `/otajob <JobId>` and the card's buttons (Refresh, Share in channel,
Watch)."""

from __future__ import annotations

from dataclasses import replace

from slack_bolt.async_app import AsyncApp, AsyncRespond

from ..job_ref import JobRef
from ..render import Message
from . import watching
from .asker import Asker
from .buttons import Click, on_click
from .deps import Deps
from .grammar import QueryJob, WatchJob
from .replies import answer_with_counts, counts_within, ephemeral, job_reply


async def show_card(deps: Deps, request: QueryJob, asker: Asker, respond: AsyncRespond) -> None:
    """The card, only for the asker: so it may carry the write actions they may take."""
    admin = await deps.admins.is_admin(asker.user_id)
    ref = JobRef(request.job_id, request.instance_id)
    send, replace = ephemeral(respond, replace=None), ephemeral(respond, replace=True)
    await answer_with_counts(deps, ref, send, replace, lang=asker.lang, admin=admin)


ROUTES = {QueryJob: show_card}


def register(app: AsyncApp, deps: Deps) -> None:
    @on_click(app, deps, "job_refresh", JobRef.from_value)
    async def refresh(ref: JobRef, click: Click) -> None:
        # Refresh skips the cache (but still joins a read already under way). If Alibaba
        # Cloud says no, the card stays and only the clicker sees why.
        async def in_place(message: Message) -> None:
            await click.respond(replace_original=True, **message.as_kwargs())

        # An ephemeral card is this person's own: it keeps their write actions. A card in
        # the channel (shared or watched) never shows them.
        admin = click.ephemeral and await deps.admins.is_admin(click.asker.user_id)
        # A person's own card speaks their language; a card in the channel, the channel's.
        lang = click.asker.lang
        if not click.ephemeral:
            lang = await deps.languages.of_channel(click.asker.channel_id)
        await answer_with_counts(
            deps,
            ref,
            in_place,
            in_place,
            lang=lang,
            refusal_lang=click.asker.lang,
            fresh=True,
            admin=admin,
            refused=ephemeral(click.respond),
        )

    @on_click(app, deps, "job_share", JobRef.from_value)
    async def share(ref: JobRef, click: Click) -> None:
        # Named in plain text ("Shared by alice"): sharing must not ping anyone.
        shared = replace(ref, shared_by=click.asker.user_name)
        lang = await deps.languages.of_channel(click.asker.channel_id)
        reply = await job_reply(deps, shared, lang=lang, refusal_lang=click.asker.lang)
        message = reply.message
        if reply.ok:  # a new message nothing can replace later: it waits for the counts
            message = reply.with_counts(await counts_within(deps, shared))
        # An error is never shared with the channel: only the clicker sees it.
        response_type = "in_channel" if reply.ok else "ephemeral"
        await click.respond(
            response_type=response_type, replace_original=False, **message.as_kwargs()
        )

    @on_click(app, deps, "job_watch", JobRef.from_value)
    async def watch_here(ref: JobRef, click: Click) -> None:
        request = WatchJob(ref.job_id, None, ref.instance_id)
        await watching.watch(deps, request, click.asker, click.respond)
