"""The /otajob slash command. Parsing is pure and happens before ack(); nothing slow
runs before Slack's three-second deadline."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from ..deps import Deps
from ..job_ref import JobRef
from . import watching
from .grammar import BadInput, QueryJob, ShowHelp, parse_command
from .replies import job_reply


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
        route = watching.ROUTES.get(type(parsed))
        if route is not None:
            asker = watching.Asker(
                channel_id=command.get("channel_id", ""),
                user_id=command.get("user_id", ""),
                user_name=command.get("user_name", ""),
            )
            await route(deps, parsed, asker, respond)
            return
        assert isinstance(parsed, QueryJob)
        reply = await job_reply(deps, JobRef(parsed.job_id, parsed.instance_id))
        await respond(response_type="ephemeral", **reply.message.as_kwargs())
