"""Who asked, and where: read from a slash command or an interaction's payload, shared by
every surface. People are named in plain text from here on: naming must never ping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Asker:
    channel_id: str
    user_id: str
    user_name: str
    team_id: str = ""
    # The language their replies are written in: filled in after the ack
    # (bot/slack/language.py), English until then.
    lang: str = "en"

    @classmethod
    def of_command(cls, command: dict[str, Any]) -> Asker:
        return cls(
            channel_id=command.get("channel_id", ""),
            user_id=command.get("user_id", ""),
            user_name=command.get("user_name", ""),
            team_id=command.get("team_id", ""),
        )

    @classmethod
    def of_interaction(cls, body: dict[str, Any]) -> Asker:
        """The clicker (or submitter) of a block_actions or view_submission payload."""
        user = body.get("user") or {}
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        name = user.get("name") or user.get("username") or user.get("id") or "someone"
        team = (body.get("team") or {}).get("id") or user.get("team_id") or ""
        return cls(
            channel_id=str(channel or ""),
            user_id=str(user.get("id") or ""),
            user_name=name,
            team_id=str(team),
        )
