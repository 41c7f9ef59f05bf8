"""Test doubles (fake Slack server and request builders) for tests and benchmarks."""

from tests.fakes.slack import (
    BOT_ID,
    ApiCall,
    FakeSlack,
    WebhookPost,
    app_home_opened_event,
    app_mention_event,
    block_action_body,
    event_body,
    signed_request,
    slash_command_body,
    view_submission_body,
)

__all__ = [
    "BOT_ID",
    "ApiCall",
    "FakeSlack",
    "WebhookPost",
    "app_home_opened_event",
    "app_mention_event",
    "block_action_body",
    "event_body",
    "signed_request",
    "slash_command_body",
    "view_submission_body",
]
