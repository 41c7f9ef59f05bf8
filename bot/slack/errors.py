"""One funnel for unexpected exceptions: log with an id, tell the person that id."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from ..render import Renderer
from .deps import Deps
from .language import Languages
from .replies import ephemeral

log = logging.getLogger("otajob.errors")


class Unexpected:
    """Reports an exception: Bolt's error handler (raised before the ack) and the
    answering tasks' (raised after it) are this one."""

    def __init__(self, renderer: Renderer, languages: Languages, *, demo: bool) -> None:
        self._renderer = renderer
        self._languages = languages
        self._demo = demo

    async def __call__(
        self, error: Exception, body: dict[str, Any], respond: AsyncRespond | None
    ) -> None:
        error_id = uuid.uuid4().hex[:10]
        kind = body.get("type") or ("command" if body.get("command") else "request")
        log.error(
            "error_id=%s while handling a %s",
            error_id,
            kind,
            exc_info=error,
            extra={"error_id": error_id, "request_kind": kind},
        )
        # Events and Home tab buttons have no response_url (Bolt passes a respond anyway).
        if respond is None or not body.get("response_url"):
            return
        # Slack's own refusal (rate limited past the retries, say) is not a bug of ours:
        # the person is told what Slack said and what to do.
        slack_error = (
            str(error.response.get("error") or "") if isinstance(error, SlackApiError) else ""
        )
        # No lookup here: the person's language if it is known, else the workspace's.
        user = body.get("user")
        user = str(
            (user.get("id") if isinstance(user, dict) else None) or body.get("user_id") or ""
        )
        lang = self._languages.known(user) or self._languages.default
        message = self._renderer.render(
            "unexpected", lang=lang, error_id=error_id, slack_error=slack_error, demo=self._demo
        )
        try:
            await ephemeral(respond)(message)
        except Exception:  # the funnel itself must never raise
            log.exception("error_id=%s could not be reported to the user", error_id)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.error
    async def unexpected(
        error: Exception, body: dict[str, Any], respond: AsyncRespond | None
    ) -> None:
        await deps.answering.report(error, body, respond)
