"""Buttons on the job card: Refresh, Share in channel, Watch."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from ..deps import Deps
from ..job_ref import JobRef
from ..render import Message
from . import watching
from .grammar import WatchJob
from .replies import answer_with_counts, counts_within, job_reply


def _who(body: dict[str, Any]) -> str:
    """The sharer's name as text: naming them must not ping them (no <@U...> mention)."""
    user = body.get("user") or {}
    return str(user.get("name") or user.get("username") or user.get("id") or "someone")


def register(app: AsyncApp, deps: Deps) -> None:
    async def button_ref(action: dict[str, Any], respond: AsyncRespond) -> JobRef | None:
        """The job a button is about; a value we did not write gets a plain refusal."""
        ref = JobRef.from_value(action.get("value"))
        if ref is None:
            message = deps.renderer.render(
                "bad_input", reason="stale_button", value="", demo=deps.demo
            )
            await respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())
        return ref

    @app.action("job_refresh")
    async def refresh(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        ref = await button_ref(action, respond)
        if ref is None:
            return

        # Refresh skips the cache (but still joins a read already under way). If Alibaba
        # Cloud says no, the card stays and only the clicker sees why.
        async def in_place(message: Message) -> None:
            await respond(replace_original=True, **message.as_kwargs())

        async def refused(message: Message) -> None:
            await respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())

        # An ephemeral card is this person's own: it keeps their write actions. A card in
        # the channel (shared or watched) never shows them.
        ephemeral = bool((body.get("container") or {}).get("is_ephemeral"))
        admin = ephemeral and await deps.admins.is_admin(str((body.get("user") or {}).get("id")))
        await answer_with_counts(
            deps, ref, in_place, in_place, fresh=True, admin=admin, refused=refused
        )

    @app.action("job_share")
    async def share(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        ref = await button_ref(action, respond)
        if ref is None:
            return
        shared = replace(ref, shared_by=_who(body))
        reply = await job_reply(deps, shared)
        message = reply.message
        if reply.ok:  # a new message nothing can replace later: it waits for the counts
            message = reply.with_counts(await counts_within(deps, shared))
        # An error is never shared with the channel: only the clicker sees it.
        response_type = "in_channel" if reply.ok else "ephemeral"
        await respond(response_type=response_type, replace_original=False, **message.as_kwargs())

    @app.action("job_watch")
    async def watch_here(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        ref = await button_ref(action, respond)
        if ref is None:
            return
        asker = watching.Asker(
            channel_id=(body.get("channel") or {}).get("id", ""),
            user_id=str((body.get("user") or {}).get("id") or ""),
            user_name=_who(body),
        )
        await watching.watch(deps, WatchJob(ref.job_id, None, ref.instance_id), asker, respond)
