"""Test doubles (fake Slack server and request builder) for tests and benchmarks."""

from tests.fakes.directory import Directory, Person, UserGroup
from tests.fakes.inbound import (
    Inbound,
    as_http,
    checkboxes,
    conversations_select,
    multi_users_select,
    radio_buttons,
    static_select,
    text_input,
    users_select,
)
from tests.fakes.slack import BOT_ID, ApiCall, FakeSlack, WebhookPost

__all__ = [
    "BOT_ID",
    "ApiCall",
    "Directory",
    "FakeSlack",
    "Inbound",
    "Person",
    "UserGroup",
    "WebhookPost",
    "as_http",
    "checkboxes",
    "conversations_select",
    "multi_users_select",
    "radio_buttons",
    "static_select",
    "text_input",
    "users_select",
]
