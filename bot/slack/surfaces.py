"""Register every Slack surface on the app: the access check first, then the listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from . import access, card, commands, errors, guarded, home, mention, respond, triage
from .deps import Deps


def register_all(app: AsyncApp, deps: Deps, policy: access.Policy) -> None:
    access.register(app, policy, deps.renderer, deps.languages, demo=deps.demo)
    respond.register(app)
    for module in (commands, card, triage, mention, home, guarded, errors):
        module.register(app, deps)
