"""The /otajob slash command. Parsing is pure and happens before ack(); nothing slow
runs before Slack's three-second deadline."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from . import card, triage, watching
from .asker import Asker
from .deps import Deps
from .grammar import BadInput, ShowHelp, parse_command

# What each parsed request runs: every feature module names its own.
ROUTES: dict[type, Any] = {**card.ROUTES, **watching.ROUTES, **triage.ROUTES}


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
        await ROUTES[type(parsed)](deps, parsed, Asker.of_command(command), respond)
