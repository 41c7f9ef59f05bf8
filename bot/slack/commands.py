"""The /otajob slash command. Parsing is pure and happens before ack(); nothing slow
runs before Slack's three-second deadline."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from . import card, triage, watching
from .asker import Asker
from .deps import Deps
from .grammar import ChannelLanguage, parse_command
from .language import channel_language_command
from .replies import help_or_refusal

# What each parsed request runs: every feature module names its own.
ROUTES: dict[type, Any] = {
    **card.ROUTES,
    **watching.ROUTES,
    **triage.ROUTES,
    ChannelLanguage: channel_language_command,
}


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/otajob")
    @deps.answering.after_ack
    async def otajob(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, client: Any
    ) -> None:
        parsed = parse_command(command.get("text"))
        asker = Asker.of_command(command)
        # Usage and input errors answer in the ack itself when the person's language is
        # known already; otherwise after the ack, once it is (never before it).
        known = deps.languages.known(asker.user_id)
        if known and (answer := help_or_refusal(deps, parsed, known)):
            await ack(**answer.as_kwargs())
            return
        await ack()
        asker = await deps.languages.asker(asker, command)
        if answer := help_or_refusal(deps, parsed, asker.lang):
            await respond(response_type="ephemeral", **answer.as_kwargs())
            return
        await ROUTES[type(parsed)](deps, parsed, asker, respond)
