"""The /otajob slash command. Parsing is pure and happens before ack(); nothing slow
runs before Slack's three-second deadline."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from ..job_ref import JobRef
from . import triage, watching
from .deps import Deps
from .grammar import BadInput, QueryJob, ShowHelp, parse_command
from .replies import answer_with_counts, ephemeral

ROUTES: dict[type, Any] = {**watching.ROUTES, **triage.ROUTES}


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/otajob")
    async def otajob(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        parsed = parse_command(command.get("text"))
        render = deps.renderer.render
        if isinstance(parsed, ShowHelp):
            default = deps.service.default_instance_id
            await ack(**render("usage", default_instance=default, demo=deps.demo).as_kwargs())
            return
        if isinstance(parsed, BadInput):
            message = render("bad_input", reason=parsed.reason, value=parsed.value, demo=deps.demo)
            await ack(**message.as_kwargs())
            return
        await ack()
        asker = watching.Asker(
            channel_id=command.get("channel_id", ""),
            user_id=command.get("user_id", ""),
            user_name=command.get("user_name", ""),
            team_id=command.get("team_id", ""),
        )
        route = ROUTES.get(type(parsed))
        if route is not None:
            await route(deps, parsed, asker, respond)
            return
        assert isinstance(parsed, QueryJob)

        # Only this person sees the card, so it may carry the write actions they may take.
        admin = await deps.admins.is_admin(asker.user_id)
        ref = JobRef(parsed.job_id, parsed.instance_id)
        send, replace = ephemeral(respond, replace=None), ephemeral(respond, replace=True)
        await answer_with_counts(deps, ref, send, replace, admin=admin)
