"""Buttons on the job card: Refresh and Share in channel."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from ..deps import Deps
from .replies import JobRef, job_message


def _who(body: dict[str, Any]) -> str:
    """The sharer's name as text: naming them must not ping them (no <@U...> mention)."""
    user = body.get("user") or {}
    return str(user.get("name") or user.get("username") or user.get("id") or "someone")


def register(app: AsyncApp, deps: Deps) -> None:
    async def stale_button(respond: AsyncRespond) -> None:
        message = deps.renderer.render("bad_input", reason="stale_button", value="", demo=deps.demo)
        await respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())

    @app.action("job_refresh")
    async def refresh(ack: AsyncAck, action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        ref = JobRef.from_value(action.get("value"))
        if ref is None:
            await stale_button(respond)
            return
        # Refresh skips the cache (but still joins a read already under way).
        message = await job_message(deps, ref, fresh=True)
        await respond(replace_original=True, **message.as_kwargs())

    @app.action("job_share")
    async def share(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        ref = JobRef.from_value(action.get("value"))
        if ref is None:
            await stale_button(respond)
            return
        message = await job_message(deps, ref, shared_by=_who(body), buttons=("refresh",))
        await respond(response_type="in_channel", replace_original=False, **message.as_kwargs())
