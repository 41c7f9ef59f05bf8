"""Buttons on the job card: Refresh and Share in channel."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from ..deps import Deps
from ..job_ref import JobRef
from . import watching
from .grammar import WatchJob
from .replies import job_reply


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
    async def refresh(ack: AsyncAck, action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        ref = await button_ref(action, respond)
        if ref is None:
            return
        # Refresh skips the cache (but still joins a read already under way). If Alibaba
        # Cloud says no, the card stays and only the clicker sees why.
        reply = await job_reply(deps, ref, fresh=True)
        if reply.ok:
            await respond(replace_original=True, **reply.message.as_kwargs())
        else:
            await respond(
                response_type="ephemeral", replace_original=False, **reply.message.as_kwargs()
            )

    @app.action("job_share")
    async def share(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        ref = await button_ref(action, respond)
        if ref is None:
            return
        reply = await job_reply(deps, replace(ref, shared_by=_who(body)))
        # An error is never shared with the channel: only the clicker sees it.
        response_type = "in_channel" if reply.ok else "ephemeral"
        await respond(
            response_type=response_type, replace_original=False, **reply.message.as_kwargs()
        )

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
