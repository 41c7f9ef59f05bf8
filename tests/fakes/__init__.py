"""Test doubles (fake Slack server and request builders) for tests and benchmarks."""

from tests.fakes.slack import (
    BOT_ID,
    ApiCall,
    FakeSlack,
    WebhookPost,
    block_action_body,
    signed_request,
    slash_command_body,
)

__all__ = [
    "BOT_ID",
    "ApiCall",
    "FakeSlack",
    "WebhookPost",
    "block_action_body",
    "signed_request",
    "slash_command_body",
]
