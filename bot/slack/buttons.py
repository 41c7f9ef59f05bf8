"""What every button handler starts with: ack at once, read the value we wrote into the
button, and refuse in plain words a value we did not write (stale or forged)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from .asker import Asker
from .deps import Deps
from .replies import ephemeral

R = TypeVar("R")


@dataclass(frozen=True)
class Click:
    """One button click: who, where, and how to answer."""

    asker: Asker
    body: dict[str, Any]
    respond: AsyncRespond
    client: AsyncWebClient

    @property
    def trigger_id(self) -> str:
        return str(self.body.get("trigger_id") or "")

    @property
    def ephemeral(self) -> bool:
        """The clicked message is this person's own (an ephemeral card)."""
        return bool((self.body.get("container") or {}).get("is_ephemeral"))


def asker_of(body: dict[str, Any]) -> Asker:
    """The clicker, by name as text: naming them must never ping them."""
    return Asker.of_interaction(body)


async def say_stale(deps: Deps, respond: AsyncRespond, lang: str) -> None:
    message = deps.renderer.render(
        "bad_input", lang=lang, reason="stale_button", value="", demo=deps.demo
    )
    await ephemeral(respond)(message)


def on_click(
    app: AsyncApp,
    deps: Deps,
    action_id: str | re.Pattern[str],
    parse: Callable[[str | None], R | None],
    *,
    look_up_language: bool = True,
) -> Callable[[Callable[[R, Click], Awaitable[None]]], Callable[[R, Click], Awaitable[None]]]:
    """Register ``handler(value, click)`` for ``action_id``; ``parse`` reads the value.
    The clicker's language is looked up first (up to LOOKUP_SECONDS), unless the handler
    has something more urgent (a dialog to open within its trigger's three seconds): it
    then starts with the language already known, else the workspace's."""

    def decorate(
        handler: Callable[[R, Click], Awaitable[None]],
    ) -> Callable[[R, Click], Awaitable[None]]:
        @app.action(action_id)
        @deps.answering.after_ack
        async def listener(
            ack: AsyncAck,
            action: dict[str, Any],
            body: dict[str, Any],
            respond: AsyncRespond,
            client: AsyncWebClient,
        ) -> None:
            await ack()
            asker = asker_of(body)
            if look_up_language:
                asker = await deps.languages.asker(asker, body)
            else:
                known = deps.languages.known(asker.user_id) or deps.languages.default
                asker = replace(asker, lang=known)
            value = parse(action.get("value"))
            if value is None:
                await say_stale(deps, respond, asker.lang)
                return
            await handler(value, Click(asker, body, respond, client))

        return handler

    return decorate
