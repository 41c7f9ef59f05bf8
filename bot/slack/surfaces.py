"""Register every Slack surface on the app."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from ..deps import Deps
from . import actions, commands, errors


def register_all(app: AsyncApp, deps: Deps) -> None:
    for module in (commands, actions, errors):
        module.register(app, deps)
